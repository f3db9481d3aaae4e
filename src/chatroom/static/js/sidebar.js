/* The sidebar: the user's rooms and direct messages with live unread counts (the page
 * follows every room on its one socket, `since` where it left off), the total in the
 * tab's title, the periodic refresh from /api/rooms, walking the list from the
 * keyboard, and the drawer it becomes on phones. Issue 12: the number of unread
 * messages that mention the user, as "@N" beside each room (SPEC §5.3). */

import { fetchRooms } from './connection.js';
import { t } from './i18n.js';
import { isDm, roomLabel, roomUrl } from './names.js';

const ROOMS_POLL_MS = 30000;

export function createSidebar(app) {
  const { config, els, conn } = app;
  const ROOM = config.room;
  const state = {
    unread: new Map(), // room -> unread count (other rooms)
    mentions: new Map(), // room -> unread messages mentioning this user (other rooms)
    otherLast: new Map(), // other room -> newest message id this page has accounted for
    epochs: new Map(), // other room -> the epoch otherLast belongs to (SPEC §8)
    helloLast: new Map(), // other room -> its last_id in this socket's hello
  };
  const label = (room) => roomLabel(room, config.userKey);

  function items() {
    const found = [];
    for (const list of [els.roomList, els.dmList]) if (list) found.push(...list.children);
    return found;
  }

  function item(name) {
    for (const li of items()) if (li.dataset.room === name) return li;
    return null;
  }

  function ensureItem(name) {
    const list = isDm(name) ? els.dmList || els.roomList : els.roomList;
    if (!list || item(name)) return;
    const li = document.createElement('li');
    li.dataset.room = name;
    const a = document.createElement('a');
    a.href = roomUrl(name);
    const sigil = document.createElement('span');
    sigil.className = 'sigil';
    sigil.setAttribute('aria-hidden', 'true');
    sigil.textContent = isDm(name) ? '@' : '#';
    a.append(sigil, label(name));
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.hidden = true;
    li.append(a, ' ', badge);
    // Keep the list sorted by what it shows.
    const shown = label(name);
    for (const other of list.children) {
      if (label(other.dataset.room || '').localeCompare(shown) > 0) { other.before(li); return; }
    }
    list.append(li);
  }

  // A mention by a user this user blocked does not count (issue 13; nor on the server).
  function mentionsMe(m) {
    if (app.blocking && app.blocking.isBlocked(m.user)) return false;
    return !m.deleted && Array.isArray(m.mentions) && m.mentions.includes(config.me);
  }

  function updateTitle() {
    let total = app.room.unseen();
    for (const [room, n] of state.unread) if (room !== ROOM) total += n;
    const title = (total > 0 ? '(' + total + ') ' : '') + config.roomLabel + ' · chatroom';
    if (document.title !== title) document.title = title;
  }

  // issue 12: "@N" beside a room with unread mentions.
  function renderMentions(li) {
    const n = state.mentions.get(li.dataset.room) || 0;
    let badge = li.querySelector('.mention-badge');
    if (!badge && !n) return;
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'badge mention-badge';
      const unread = li.querySelector('.badge');
      if (unread) unread.before(badge);
      else li.append(badge);
    }
    badge.textContent = '@' + n;
    badge.dataset.mentions = String(n);
    badge.setAttribute('aria-label', t('mentions_count', { count: n }));
    badge.hidden = n === 0;
  }

  function renderBadges() {
    state.unread.set(ROOM, 0);
    state.mentions.set(ROOM, 0);
    let total = 0;
    for (const li of items()) {
      if (li.dataset.room) renderMentions(li);
      const badge = li.querySelector('.badge:not(.mention-badge)');
      if (!badge || !li.dataset.room) continue;
      const n = state.unread.get(li.dataset.room) || 0;
      total += n;
      badge.textContent = String(n);
      badge.dataset.unread = String(n);
      badge.setAttribute('aria-label', t('unread', { count: n }));
      badge.hidden = n === 0;
    }
    if (els.totalUnread) {
      els.totalUnread.textContent = String(total);
      els.totalUnread.hidden = total === 0;
    }
    updateTitle();
  }

  function addUnread(room, n) {
    state.unread.set(room, (state.unread.get(room) || 0) + n);
    renderBadges();
  }

  // The hello's counts for the other rooms.
  function onHello(f) {
    state.helloLast.clear();
    for (const r of Array.isArray(f.rooms) ? f.rooms : []) {
      if (!r || typeof r.name !== 'string' || r.name === ROOM) continue;
      ensureItem(r.name);
      state.unread.set(r.name, Math.max(0, Number(r.unread) || 0));
      state.mentions.set(r.name, Math.max(0, Number(r.mentions) || 0));
      state.helloLast.set(r.name, Math.max(0, Number(r.last_id) || 0));
      if (typeof r.epoch === 'string' && !state.epochs.has(r.name)) state.epochs.set(r.name, r.epoch);
    }
    renderBadges();
  }

  // Follow the other rooms too, from where this page left off: only `since`, so no
  // history is resent.
  function followAll() {
    for (const [room, last] of state.helloLast) {
      if (!state.otherLast.has(room)) state.otherLast.set(room, last);
      const frame = { type: 'join', room: room, since: state.otherLast.get(room) };
      if (state.epochs.has(room)) frame.epoch = state.epochs.get(room); // SPEC §8
      conn.send(frame);
    }
  }

  function onJoined(f) {
    if (typeof f.room !== 'string' || !state.otherLast.has(f.room)) return;
    // Messages after this socket's hello are not in its unread count yet.
    if (typeof f.epoch === 'string') state.epochs.set(f.room, f.epoch);
    if (f.reset === true) {
      // SPEC §8: the room's history started again (Redis lost it): its ids are new ones,
      // and the server's unread count (the next hello or /api/rooms) is the one to trust.
      const ids = (Array.isArray(f.messages) ? f.messages : []).map((m) => (m && Number.isInteger(m.id) ? m.id : 0));
      state.otherLast.set(f.room, Math.max(0, ...ids));
      state.helloLast.delete(f.room);
      return;
    }
    const counted = state.helloLast.has(f.room) ? state.helloLast.get(f.room) : state.otherLast.get(f.room);
    let last = state.otherLast.get(f.room);
    let added = 0;
    let mentioned = 0;
    for (const m of Array.isArray(f.messages) ? f.messages : []) {
      if (!m || !Number.isInteger(m.id)) continue;
      if (m.id > counted && m.id > last && m.user !== config.me) {
        added += 1;
        if (mentionsMe(m)) mentioned += 1;
      }
      last = Math.max(last, m.id);
    }
    state.otherLast.set(f.room, last);
    if (mentioned) state.mentions.set(f.room, (state.mentions.get(f.room) || 0) + mentioned);
    if (added) addUnread(f.room, added);
  }

  function onMessage(f) {
    const seen = state.otherLast.has(f.room) ? state.otherLast.get(f.room) : 0;
    if (f.id <= seen) return;
    state.otherLast.set(f.room, f.id);
    if (f.user === config.me) return;
    ensureItem(f.room);
    if (mentionsMe(f)) state.mentions.set(f.room, (state.mentions.get(f.room) || 0) + 1);
    addUnread(f.room, 1);
    app.notices.notify(f);
  }

  // issue 13: `added` (an extension of SPEC §6): a room this user was just made a member
  // of is listed and followed at once, from its newest message then (nothing unread).
  function onAdded(f) {
    if (typeof f.room !== 'string' || f.room === ROOM) return;
    ensureItem(f.room);
    if (!state.otherLast.has(f.room)) {
      state.otherLast.set(f.room, Math.max(0, Number(f.last_id) || 0));
      conn.send({ type: 'join', room: f.room, since: state.otherLast.get(f.room) });
    }
    renderBadges();
  }

  function refresh() {
    if (navigator.onLine === false) return;
    fetchRooms()
      .then((res) => {
        if (res.status === 401) { conn.toLogin(); return null; }
        return res.ok ? res.json() : null;
      })
      .then((data) => {
        if (!data || !Array.isArray(data.rooms)) return;
        for (const r of data.rooms) {
          if (!r || typeof r.name !== 'string' || (r.is_direct && !r.member)) continue;
          ensureItem(r.name);
          if (r.private === true && app.roomStatus) app.roomStatus.markPrivate(r.name); // issue 13
          if (r.name === ROOM) continue;
          state.unread.set(r.name, r.member ? Math.max(0, Number(r.unread) || 0) : 0);
          state.mentions.set(r.name, r.member ? Math.max(0, Number(r.mentions) || 0) : 0);
          // A room this user joined since the socket's hello (a new direct message):
          // follow it from now on.
          if (r.member && !state.otherLast.has(r.name) && conn.isReady()) {
            state.otherLast.set(r.name, Math.max(0, Number(r.last_id) || 0));
            conn.send({ type: 'join', room: r.name, since: state.otherLast.get(r.name) });
          }
        }
        renderBadges();
      })
      .catch(() => { /* offline or server down: try again later */ });
  }

  setInterval(() => { if (document.visibilityState === 'visible' && conn.isReady()) refresh(); }, ROOMS_POLL_MS);

  // Alt+Up/Down: the previous or next room (with unread messages, if `unreadOnly`).
  function goToRoom(step, unreadOnly) {
    const rooms = items().filter((li) => li.dataset.room);
    if (!rooms.length) return;
    let index = rooms.findIndex((li) => li.dataset.room === ROOM);
    for (let i = 0; i < rooms.length; i++) {
      index = (index + step + rooms.length) % rooms.length;
      const room = rooms[index].dataset.room;
      if (room === ROOM) return;
      if (!unreadOnly || (state.unread.get(room) || 0) > 0) { location.assign(roomUrl(room)); return; }
    }
  }

  // ---- the room list as a drawer on phones ----
  function setDrawer(open) {
    document.body.classList.add('drawer-used');
    document.body.classList.toggle('drawer-open', open);
    if (els.toggle) els.toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (els.backdrop) els.backdrop.hidden = !open;
    if (open) {
      const link = els.sidebar && els.sidebar.querySelector('a[aria-current="page"], a');
      if (link) link.focus();
    }
  }
  const drawerOpen = () => document.body.classList.contains('drawer-open');
  if (els.toggle) {
    els.toggle.hidden = false;
    els.toggle.addEventListener('click', () => setDrawer(!drawerOpen()));
  }
  if (els.backdrop) els.backdrop.addEventListener('click', () => setDrawer(false));

  function markCurrent() {
    const current = item(ROOM);
    if (!current) return;
    current.classList.add('current');
    const link = current.querySelector('a');
    if (link) link.setAttribute('aria-current', 'page');
  }

  // A user in more rooms than the server's join burst (joins_per_minute) is told
  // to wait for the rest: follow each again once `retry_after` has passed.
  function followLater(room, seconds) {
    const wait = Math.max(0, Number(seconds) || 0) * 1000 + Math.random() * 500;
    setTimeout(() => {
      if (conn.isReady() && state.otherLast.has(room)) {
        conn.send({ type: 'join', room: room, since: state.otherLast.get(room) });
      }
    }, wait);
  }

  return {
    onHello: onHello,
    followAll: followAll,
    followLater: followLater,
    onJoined: onJoined,
    onMessage: onMessage,
    onAdded: onAdded,
    follows(room) { return state.otherLast.has(room); },
    refresh: refresh,
    renderBadges: renderBadges,
    updateTitle: updateTitle,
    goToRoom: goToRoom,
    markCurrent: markCurrent,
    drawerOpen: drawerOpen,
    closeDrawer() { setDrawer(false); },
  };
}
