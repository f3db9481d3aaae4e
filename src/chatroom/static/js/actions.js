/* What one can do with a message (SPEC §5): a toolbar with Reply, React, Edit and
 * Delete (the last two on one's own messages only), and Block / Unblock its author
 * (others' messages; SPEC §6, blocking.js). It shows on the message under the
 * mouse, and opens from the message's "⋯" button (keyboard, phones) or a long press;
 * Esc closes it. Delete asks first, inside the toolbar. Clicking a reaction chip
 * toggles one's reaction. Every change is a frame to the server; the page changes when
 * the server's `edited`/`deleted`/`reaction` frame comes back (room.js). */

import { t } from './i18n.js';
import { newClientId } from './store.js';

const LONG_PRESS_MS = 500;
const ITEM = 'li.message[data-id]:not(.deleted)';

export function createActions(app) {
  const { config, els, conn, list } = app;
  const state = { li: null, pressTimer: null };

  function button(act, icon, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'action';
    b.dataset.act = act;
    b.title = label;
    b.setAttribute('aria-label', label);
    const span = document.createElement('span');
    span.setAttribute('aria-hidden', 'true');
    span.textContent = icon;
    b.append(span);
    return b;
  }

  const bar = document.createElement('div');
  bar.className = 'message-actions';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', t('message_actions'));
  const tools = document.createElement('span');
  tools.className = 'tools';
  tools.append(
    button('reply', '↩', t('reply')),
    button('react', '☺', t('react')),
    button('edit', '✎', t('edit')),
    button('delete', '🗑', t('delete')),
    button('block', '⊘', t('block', { user: '' })), // issue 13: others' messages only
  );
  const confirmBox = document.createElement('span');
  confirmBox.className = 'confirm';
  confirmBox.hidden = true;
  const question = document.createElement('span');
  question.textContent = t('delete_confirm');
  const yes = document.createElement('button');
  yes.type = 'button';
  yes.className = 'danger';
  yes.dataset.act = 'confirm-delete';
  yes.textContent = t('delete');
  const no = document.createElement('button');
  no.type = 'button';
  no.className = 'quiet';
  no.dataset.act = 'cancel-delete';
  no.textContent = t('cancel');
  confirmBox.append(question, ' ', yes, ' ', no);
  bar.append(tools, confirmBox);

  // A change to the room: `room` and a fresh `client_id` added.
  function send(frame) {
    const full = Object.assign({ room: config.room, client_id: newClientId() }, frame);
    if (!conn.isReady() || !conn.send(full)) app.notices.alert('offline', t('action_offline'));
  }

  function attach(li) {
    if (state.li === li) return;
    detach();
    const own = li.dataset.user === config.me;
    tools.querySelector('[data-act="edit"]').hidden = !own;
    // issue 13: the room's staff delete anyone's message.
    tools.querySelector('[data-act="delete"]').hidden = !(own || (app.roomStatus && app.roomStatus.isStaff()));
    const block = tools.querySelector('[data-act="block"]');
    block.hidden = own || !app.blocking;
    if (!block.hidden) {
      const label = t(app.blocking.isBlocked(li.dataset.user) ? 'unblock' : 'block', { user: li.dataset.user });
      block.title = label;
      block.setAttribute('aria-label', label);
    }
    confirmBox.hidden = true;
    tools.hidden = false;
    li.append(bar);
    li.classList.add('actions-open');
    state.li = li;
  }

  function detach() {
    if (!state.li) return;
    state.li.classList.remove('actions-open');
    const more = state.li.querySelector('.more');
    if (more) more.setAttribute('aria-expanded', 'false');
    bar.remove();
    state.li = null;
  }

  // From the "⋯" button or a long press: the toolbar, focused.
  function open(li) {
    attach(li);
    const more = li.querySelector('.more');
    if (more) more.setAttribute('aria-expanded', 'true');
    tools.querySelector('button:not([hidden])').focus();
  }

  function closeAndFocus() {
    const li = state.li;
    detach();
    const more = li && li.querySelector('.more');
    if (more) more.focus();
  }

  function act(name, li) {
    const item = list.item(li);
    if (!item) return;
    if (name === 'reply') { detach(); app.reply.start(li); }
    else if (name === 'edit') { detach(); app.editing.start(li); }
    else if (name === 'block') { closeAndFocus(); app.blocking.toggle(li.dataset.user); }
    else if (name === 'react') {
      const opener = tools.querySelector('[data-act="react"]');
      app.emoji.open(li.querySelector('.body'), li.querySelector('.more'), (emoji) => {
        const users = (item.reactions && item.reactions[emoji]) || [];
        if (!users.includes(config.me)) send({ type: 'react', id: item.id, emoji: emoji, on: true });
      });
      if (opener) detach();
    } else if (name === 'delete') {
      tools.hidden = true;
      confirmBox.hidden = false;
      no.focus();
    } else if (name === 'cancel-delete') {
      confirmBox.hidden = true;
      tools.hidden = false;
      tools.querySelector('[data-act="delete"]').focus();
    } else if (name === 'confirm-delete') {
      send({ type: 'delete', id: item.id });
      closeAndFocus();
    }
  }

  bar.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (b && state.li) act(b.dataset.act, state.li);
  });
  bar.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); closeAndFocus(); return; }
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const buttons = Array.from(bar.querySelectorAll('button')).filter((b) => b.offsetParent !== null);
    const at = buttons.indexOf(document.activeElement);
    if (at < 0) return;
    ev.preventDefault();
    buttons[(at + (ev.key === 'ArrowRight' ? 1 : -1) + buttons.length) % buttons.length].focus();
  });
  bar.addEventListener('focusout', (ev) => {
    if (state.li && ev.relatedTarget && !state.li.contains(ev.relatedTarget)) detach();
  });

  els.list.addEventListener('click', (ev) => {
    const more = ev.target.closest('.more');
    if (more) {
      const li = more.closest(ITEM);
      if (li && state.li === li && more.getAttribute('aria-expanded') === 'true') detach();
      else if (li) open(li);
      return;
    }
    const chip = ev.target.closest('.reaction');
    const li = chip && chip.closest(ITEM);
    const item = li && list.item(li);
    if (item && chip.dataset.emoji) {
      send({ type: 'react', id: item.id, emoji: chip.dataset.emoji, on: chip.getAttribute('aria-pressed') !== 'true' });
    }
  });

  // Hover: the toolbar follows the mouse, unless it holds the focus.
  els.list.addEventListener('mouseover', (ev) => {
    if (bar.contains(document.activeElement) || (app.emoji && app.emoji.isOpen())) return;
    const li = ev.target.closest(ITEM);
    if (li && !li.classList.contains('editing')) attach(li);
  });
  els.list.addEventListener('mouseleave', () => {
    if (!bar.contains(document.activeElement)) detach();
  });

  // Long press (touch screens).
  const cancelPress = () => { clearTimeout(state.pressTimer); state.pressTimer = null; };
  els.list.addEventListener('touchstart', (ev) => {
    const li = ev.target.closest(ITEM);
    if (!li || ev.target.closest('button, a, textarea')) return;
    cancelPress();
    state.pressTimer = setTimeout(() => { state.pressTimer = null; open(li); }, LONG_PRESS_MS);
  }, { passive: true });
  for (const name of ['touchend', 'touchmove', 'touchcancel']) els.list.addEventListener(name, cancelPress, { passive: true });

  return { send: send, open: open, close: detach };
}
