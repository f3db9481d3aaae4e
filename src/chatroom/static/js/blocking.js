/* Blocking (SPEC §6): the messages of users one blocked are hidden behind a note with
 * a "Show" toggle (templates/_message.html: the class `blocked` on the <li>), and the
 * message toolbar offers Block / Unblock (actions.js) over POST and DELETE /api/blocks.
 * The blocked names come with the page (<body data-blocked>), so server-rendered
 * messages are hidden before the first paint; live ones are marked as they are added.
 * Their messages are neither read out nor notified (notices.js asks `isBlocked`). */

import { sendJson } from './forms.js';
import { errorText, t } from './i18n.js';

function namesFromPage() {
  try {
    const names = JSON.parse(document.body.dataset.blocked || '[]');
    return Array.isArray(names) ? names.filter((n) => typeof n === 'string').map((n) => n.toLowerCase()) : [];
  } catch (e) {
    return [];
  }
}

export function createBlocking(app) {
  const { els } = app;
  const state = { blocked: new Set(namesFromPage()), busy: false };

  function isBlocked(user) {
    return state.blocked.has(String(user || '').toLowerCase());
  }

  function mark(li) {
    const hidden = isBlocked(li.dataset.user);
    if (!hidden) {
      const toggle = li.querySelector('.reveal-toggle');
      if (toggle) toggle.checked = false;
    }
    li.classList.toggle('blocked', hidden);
  }

  function markAll() {
    for (const li of els.list.querySelectorAll('li.message')) mark(li);
  }

  // New items (live messages, older pages) are marked as they enter the list, before
  // the browser paints them.
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === 1 && node.matches('li.message')) mark(node);
      }
    }
  }).observe(els.list, { childList: true });

  function change(user, blocking) {
    if (state.busy) return Promise.resolve(false);
    state.busy = true;
    const call = blocking
      ? sendJson('POST', '/api/blocks', { user: user })
      : sendJson('DELETE', '/api/blocks/' + encodeURIComponent(user));
    return call.then(({ res, data }) => {
      if (!res.ok) {
        const code = data && data.error && typeof data.error.code === 'string' ? data.error.code : 'error';
        app.notices.alert(code, errorText(code));
        return false;
      }
      if (blocking) state.blocked.add(user.toLowerCase());
      else state.blocked.delete(user.toLowerCase());
      markAll();
      app.notices.alert('blocking', t(blocking ? 'blocked_now' : 'unblocked_now', { user: user }));
      return true;
    }).catch(() => {
      app.notices.alert('unreachable', t('unreachable'));
      return false;
    }).finally(() => { state.busy = false; });
  }

  // Block, or unblock a blocked user: from a message's toolbar.
  function toggle(user) {
    return change(String(user), !isBlocked(user));
  }

  markAll();
  return { isBlocked: isBlocked, toggle: toggle, mark: mark };
}
