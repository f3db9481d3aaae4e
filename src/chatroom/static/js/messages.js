/* The message list of the current room: building items from the page's
 * <template id="message-template"> (rendered by the server from templates/_message.html,
 * the same markup as the server-rendered list), pending and failed sends, the gap and
 * "new messages" notices, id order, and staying scrolled to the bottom. Text goes in
 * as DOM nodes only (markup.js), never as HTML. SPEC §5 (issue 12): `update` shows an
 * item's edits, tombstone, quoted parent, reactions and mentions; `item(li)` is the
 * last known item of an <li>. */

import { errorText, fullDate, setTime, t } from './i18n.js';
import { renderText } from './markup.js';
import { cleanReactions, renderReactions } from './reactions.js';
import { avatarClass, initial } from './names.js';
import { relayout } from './timeline.js';
import { renderFiles } from './uploads.js';

export function createMessageList({ config, els }) {
  const list = els.list;
  const prototype = els.template.content.querySelector('li.message');
  // issue 12: the template's one empty reaction chip is the chips' prototype.
  const chipProto = prototype.querySelector('.reactions .reaction');
  if (chipProto) chipProto.remove();
  const items = new WeakMap(); // <li> -> its message item (SPEC §5 fields included)
  const state = {
    pending: new Map(), // client_id -> <li> of a not yet confirmed message
    pinned: true, // the list is scrolled to the bottom
  };

  function build(m) {
    const user = String(m.user);
    const li = prototype.cloneNode(true);
    li.classList.toggle('mine', user === config.me);
    if (Number.isInteger(m.id)) li.dataset.id = String(m.id);
    li.dataset.user = user;
    const avatar = li.querySelector('.avatar');
    avatar.classList.add(avatarClass(user, config.avatarHues));
    avatar.textContent = initial(user);
    li.querySelector('.author').textContent = user;
    setTime(li.querySelector('time'), m.ts);
    const files = li.querySelector('.files'); // issue 15
    if (files) renderFiles(files, m.files);
    update(li, m);
    return li;
  }

  // issue 12: show item `m`'s text and SPEC §5 fields in `li`.
  function update(li, m) {
    const item = Object.assign({}, items.get(li) || {}, m);
    item.reactions = cleanReactions(item.reactions);
    items.set(li, item);
    const deleted = item.deleted === true;
    li.classList.toggle('deleted', deleted);
    li.classList.toggle('mentioned', !deleted && Array.isArray(item.mentions) && item.mentions.includes(config.me));
    const text = li.querySelector('.text');
    if (deleted) text.textContent = t('message_deleted');
    else renderText(text, String(item.text));
    const edited = li.querySelector('.edited');
    if (edited) {
      edited.hidden = deleted || !Number(item.edited);
      if (!edited.hidden) {
        edited.dataset.ts = String(item.edited);
        edited.title = t('edited_at', { time: fullDate(item.edited) });
        edited.textContent = t('edited');
      }
    }
    const quote = li.querySelector('.reply-to');
    const parent = !deleted && item.reply_to && Number.isInteger(item.reply_to.id) ? item.reply_to : null;
    if (quote) {
      quote.hidden = !parent;
      const jump = quote.querySelector('.reply-jump');
      jump.dataset.id = parent ? String(parent.id) : '';
      const known = parent && typeof parent.user === 'string';
      quote.querySelector('.reply-author').textContent = known ? parent.user : '';
      quote.querySelector('.reply-text').textContent = known ? String(parent.text || '') : t('reply_unknown');
    }
    if (deleted) {
      const files = li.querySelector('.files');
      if (files) renderFiles(files, []);
    }
    if (chipProto) renderReactions(li.querySelector('.reactions'), deleted ? {} : item.reactions, config.me, chipProto);
  }

  function buildPending(entry) {
    const li = build({ user: config.me, ts: entry.ts, text: entry.text, files: entry.files, reply_to: entry.reply_to });
    const status = document.createElement('span');
    status.className = 'status';
    li.querySelector('.body').append(status);
    li.dataset.clientId = entry.client_id;
    setPendingState(li, entry.failed ? 'failed' : 'pending', entry.code);
    state.pending.set(entry.client_id, li);
    return li;
  }

  function actionButton(action, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link-button';
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  function setPendingState(li, pendingState, code) {
    li.classList.toggle('pending', pendingState === 'pending');
    li.classList.toggle('failed', pendingState === 'failed');
    const status = li.querySelector('.status');
    if (!status) return;
    status.replaceChildren();
    if (pendingState === 'pending') {
      status.textContent = t('sending');
      return;
    }
    status.append(t('not_sent') + (code ? ': ' + errorText(code) : '') + ' ');
    status.append(actionButton('retry', t('retry')), ' ', actionButton('discard', t('discard')));
  }

  // A sent message the server confirmed: it becomes an ordinary item with its id.
  function confirm(li, id) {
    li.classList.remove('pending', 'failed');
    li.classList.add('acked');
    li.dataset.id = String(id);
    const item = items.get(li);
    if (item) item.id = id; // issue 12: actions need it before the server's copy arrives
    const status = li.querySelector('.status');
    if (status) status.remove();
    insertConfirmed(li, id);
  }

  function gapText(missing) {
    return t(missing === 1 ? 'gap_one' : 'gap_other', { count: missing });
  }

  // Messages lost while away (a reconnect after history moved on): a line in the list.
  function addGapNotice(missing) {
    const li = document.createElement('li');
    li.className = 'notice gap';
    li.textContent = gapText(missing);
    list.insertBefore(li, list.querySelector('li.pending, li.failed'));
  }

  // Older messages no longer kept: the line above the list.
  function setGap(missing) {
    if (!els.gap) return;
    els.gap.hidden = !(missing > 0);
    els.gap.textContent = missing > 0 ? gapText(missing) : '';
  }

  function dividerEl() {
    let li = document.getElementById('new-messages');
    if (!li) {
      li = document.createElement('li');
      li.className = 'divider';
      li.id = 'new-messages';
      const span = document.createElement('span');
      span.textContent = t('new_messages');
      li.append(span);
    }
    return li;
  }

  function placeDividerBefore(li) {
    const divider = dividerEl();
    li.before(divider);
    return divider;
  }

  // The "new messages" divider before the first message with an id >= firstId that
  // someone else wrote (one's own messages were seen when they were written).
  function placeDivider(firstId) {
    for (const li of list.querySelectorAll(':scope > li.message[data-id]')) {
      if (Number(li.dataset.id) >= firstId && li.dataset.user !== config.me) return placeDividerBefore(li);
    }
    return null;
  }

  // issue 12: one's newest message still there (Up-arrow edits it).
  function findLastOwn() {
    const mine = list.querySelectorAll(':scope > li.message.mine[data-id]:not(.deleted)');
    return mine.length ? mine[mine.length - 1] : null;
  }

  function findById(id) {
    return list.querySelector('li[data-id="' + Number(id) + '"]');
  }

  // Confirmed messages stay in id order, above the pending/failed ones at the bottom.
  function insertConfirmed(li, id) {
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (node === li) continue;
      if (node.classList.contains('notice')) { node.after(li); return; }
      if (!node.dataset.id) continue; // pending or failed, day separators, the divider
      const nid = Number(node.dataset.id);
      if (nid === id) { node.replaceWith(li); return; }
      if (nid < id) { node.after(li); return; }
    }
    list.prepend(li);
  }

  // The first join: the server's history replaces the server-rendered list.
  function clear() {
    list.replaceChildren();
    for (const li of state.pending.values()) li.remove();
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToBottom() {
    list.scrollTop = list.scrollHeight;
    state.pinned = true;
  }

  // Show `divider` near the top if the list scrolls; true if it did.
  function scrollToDivider(divider) {
    if (!divider || list.scrollHeight <= list.clientHeight) return false;
    list.scrollTop = Math.max(0, divider.offsetTop - list.offsetTop - 8);
    state.pinned = nearBottom();
    return true;
  }

  // Stay at the bottom when the list changes size (alerts, typing line, window resize).
  list.addEventListener('scroll', () => { state.pinned = nearBottom(); }, { passive: true });
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => { if (state.pinned) list.scrollTop = list.scrollHeight; }).observe(list);
  }

  return {
    pending: state.pending,
    build: build,
    update: update,
    item(li) { return items.get(li) || null; },
    buildPending: buildPending,
    setPendingState: setPendingState,
    confirm: confirm,
    addGapNotice: addGapNotice,
    setGap: setGap,
    placeDivider: placeDivider,
    placeDividerBefore: placeDividerBefore,
    findById: findById,
    findLastOwn: findLastOwn,
    insertConfirmed: insertConfirmed,
    clear: clear,
    nearBottom: nearBottom,
    scrollToBottom: scrollToBottom,
    scrollToDivider: scrollToDivider,
    relayout() { relayout(list, config.groupSeconds); },
  };
}
