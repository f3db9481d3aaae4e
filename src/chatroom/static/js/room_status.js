/* Issue 13, the room as moderation left it for this user: the lock beside private rooms,
 * what the user may do here (GET /api/rooms/<r>: role and staff level, read-only), the
 * notice when they are removed from a room (`removed` frame: kicked, banned, deleted)
 * or added to one (`added`),
 * and the composer's explanation when the server refuses a post (`forbidden`: muted,
 * read-only). Staff see "delete" on everyone's messages (actions.js asks isStaff). */

import { t } from './i18n.js';
import { isDm, roomUrl } from './names.js';
import { xsrfToken } from './forms.js';

// The lock shown after a private room's name in the sidebar.
export function lockIcon() {
  const lock = document.createElement('span');
  lock.className = 'lock';
  lock.setAttribute('role', 'img');
  lock.setAttribute('aria-label', t('rs_private'));
  lock.title = t('rs_private');
  lock.textContent = '🔒';
  return lock;
}

// A JSON call with the page's session: {status, data}.
export function api(method, path, body) {
  const init = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json', 'X-XSRFToken': xsrfToken() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init).then((res) => res.json().catch(() => ({})).then((data) => ({ status: res.status, data: data })));
}

const REFUSALS = [
  [/muted/, 'refused_muted'],
  [/read-only/, 'refused_read_only'],
  [/banned/, 'refused_banned'],
];

export function createRoomStatus(app) {
  const { config, els } = app;
  const ROOM = config.room;
  const state = { level: null, readOnly: false, removed: false, listeners: [] };
  const base = '/api/rooms/' + encodeURIComponent(ROOM);

  // A line above the message box (created once): why posting is refused, or removal.
  let notice = null;
  function showNotice(text, kind, link) {
    if (!notice) {
      notice = document.createElement('div');
      notice.id = 'composer-notice';
      notice.className = 'composer-notice';
      notice.setAttribute('role', 'alert');
      els.composer.before(notice);
    }
    notice.replaceChildren();
    notice.dataset.kind = kind;
    const p = document.createElement('span');
    p.textContent = text;
    notice.append(p);
    if (link) notice.append(' ', link);
    notice.hidden = false;
  }
  function hideNotice(kind) {
    if (notice && (!kind || notice.dataset.kind === kind)) notice.hidden = true;
  }

  function markPrivate(name) {
    for (const list of [els.roomList, els.dmList]) {
      const li = list && Array.from(list.children).find((x) => x.dataset.room === name);
      const a = li && li.querySelector('a');
      if (a && !a.querySelector('.lock')) a.append(lockIcon());
    }
  }

  // The hello lists the user's rooms with `private`: locks, and a new look at this room.
  function onHello(f) {
    for (const r of Array.isArray(f.rooms) ? f.rooms : []) if (r && r.private === true) markPrivate(r.name);
    load();
  }

  function load() {
    if (isDm(ROOM) || state.removed) return;
    api('GET', base).then(({ status, data }) => {
      if (status !== 200 || !data || !data.room) return;
      state.level = data.room.level === 'owner' || data.room.level === 'moderator' ? data.room.level : null;
      state.readOnly = data.room.read_only === true;
      if (state.readOnly && !state.level) showNotice(t('refused_read_only'), 'read_only');
      else hideNotice('read_only');
      for (const fn of state.listeners) fn(data.room);
    }).catch(() => { /* offline: the next hello asks again */ });
  }

  function removeFromSidebar(name) {
    for (const list of [els.roomList, els.dmList]) {
      const li = list && Array.from(list.children).find((x) => x.dataset.room === name);
      if (li) li.remove();
    }
  }

  // `removed`: this room (the page stops posting, says why, offers the lobby) or another.
  function onRemoved(f) {
    if (typeof f.room !== 'string') return;
    const reason = ['kicked', 'banned', 'deleted', 'left'].includes(f.reason) ? f.reason : 'kicked';
    const text = t('removed_' + reason, { room: f.room });
    if (f.room !== ROOM) {
      removeFromSidebar(f.room);
      app.notices.alert('removed-' + f.room, text);
      return;
    }
    state.removed = true;
    state.level = null;
    removeFromSidebar(f.room);
    const link = document.createElement('a');
    link.href = roomUrl('lobby');
    link.textContent = t('removed_go');
    showNotice(text, 'removed', link);
    els.input.disabled = true;
    for (const b of els.composer.querySelectorAll('button')) b.disabled = true;
    for (const fn of state.listeners) fn(null);
    if (app.actions) app.actions.close();
  }

  // `added` (an extension of SPEC §6): the sidebar lists the room already; its lock, and a word.
  function onAdded(f) {
    if (typeof f.room !== 'string' || f.room === ROOM) return;
    if (f.private === true) markPrivate(f.room);
    app.notices.alert('added-' + f.room, t('added_to', { room: f.room }));
  }

  // A `forbidden` answer in this room that the server explains (muted, read-only):
  // the message is marked not sent as usual, and the box says why instead of the
  // generic "not open to you". True when handled.
  function onRefused(f, cid) {
    if (f.room !== ROOM || typeof f.message !== 'string') return false;
    const found = REFUSALS.find(([re]) => re.test(f.message));
    if (!found) return false;
    app.sender.onError('forbidden', cid, f); // false for an edit or reaction: nothing pending
    for (const old of els.alerts.querySelectorAll('.alert[data-code="forbidden"]')) old.remove();
    showNotice(t(found[1]), 'refused');
    return true;
  }

  return {
    onHello: onHello,
    onRemoved: onRemoved,
    onAdded: onAdded,
    onRefused: onRefused,
    markPrivate: markPrivate,
    reload: load,
    isStaff() { return state.level !== null; },
    level() { return state.level; },
    removed() { return state.removed; },
    // fn(room or null) after each look at the room's settings.
    listen(fn) { state.listeners.push(fn); },
  };
}
