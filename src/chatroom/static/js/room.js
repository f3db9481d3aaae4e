/* The current room: joining it (again after a reconnect, `since` the last message
 * seen), taking in its messages, the "new messages" line, unseen messages while the tab
 * is hidden, and read markers. `app` holds the other parts (see main.js).
 * SPEC §5 (issue 12): the room's `rev`; a rejoin sends `since_rev` with `since` and
 * applies `updates`; `edited`, `deleted`, `reaction` and `updated` frames change items in place.
 * SPEC §8: a rejoin sends the room's `epoch` too; a `joined` with `reset: true` (Redis lost
 * the room's history, ids started again above the archive's) replaces the whole list. */

import { setTime } from './i18n.js';
import { withReaction } from './reactions.js';

const READ_DELAY_MS = 1000;
const JOIN_RETRY_MS = 3000;

export function createRoom(app) {
  const { config, els, conn, list } = app;
  const ROOM = config.room;
  const state = {
    lastId: null, // last message id seen in this room (null: never joined)
    rev: null, // the room's change counter as last seen (SPEC §5; null: not known)
    epoch: null, // which life of the room's history lastId belongs to (SPEC §8)
    joinSince: null, // the `since` of the join in flight
    firstUnread: undefined, // set by the first hello: the id the "new messages" line precedes
    markNextUnseen: false, // the tab was hidden: the next message from others gets the line
    unseen: 0, // messages that arrived while the tab was hidden
    lastReadSent: 0,
    readTimer: null,
  };

  function onHello(f) {
    if (state.firstUnread !== undefined) return;
    state.firstUnread = null;
    for (const r of Array.isArray(f.rooms) ? f.rooms : []) {
      if (!r || r.name !== ROOM) continue;
      const last = Math.max(0, Number(r.last_id) || 0);
      const count = Math.max(0, Number(r.unread) || 0);
      state.firstUnread = count > 0 ? last - count + 1 : null;
    }
  }

  function join() {
    state.joinSince = state.lastId;
    const frame = { type: 'join', room: ROOM };
    if (state.lastId !== null) frame.since = state.lastId;
    if (state.lastId !== null && state.rev !== null) frame.since_rev = state.rev; // issue 12
    if (state.lastId !== null && state.epoch !== null) frame.epoch = state.epoch; // SPEC §8
    conn.send(frame);
  }

  function onJoined(f) {
    // SPEC §8: another life of the room's history: what we had is dropped, as on a first join.
    const reset = f.reset === true;
    if (reset) state.rev = null;
    const since = reset ? null : state.joinSince;
    if (typeof f.epoch === 'string') state.epoch = f.epoch;
    const stick = list.nearBottom();
    const messages = Array.isArray(f.messages) ? f.messages : [];
    if (since === null || state.lastId === null) {
      list.clear();
      state.lastId = 0;
      list.setGap(Number(f.missing) || 0);
    } else if (f.gap && Number(f.missing) > 0) {
      list.addGapNotice(Number(f.missing));
    }
    for (const m of messages) accept(m);
    // issue 12: the current state of messages changed while away (edits, deletes, reactions).
    for (const m of Array.isArray(f.updates) ? f.updates : []) {
      const li = m && Number.isInteger(m.id) ? list.findById(m.id) : null;
      if (li) list.update(li, m);
    }
    seeRev(f.rev);
    app.sender.showQueued();
    const divider = since === null && state.firstUnread ? list.placeDivider(state.firstUnread) : null;
    list.relayout();
    app.people.setOnline(f.online);
    conn.setReady();
    if (!list.scrollToDivider(divider) && (stick || since === null)) list.scrollToBottom();
    app.sender.pump();
    scheduleRead();
    if (app.scrollback) app.scrollback.afterJoin(since === null); // issue 14: older pages, jumps
  }

  function onMessage(f) {
    app.people.dropTyper(f.user);
    const stick = list.nearBottom() || (f.user === config.me && f.client_id && list.pending.has(f.client_id));
    const li = accept(f);
    seeRev(f.rev);
    if (!li) return;
    if (f.user !== config.me) {
      if (state.markNextUnseen && document.visibilityState !== 'visible') {
        state.markNextUnseen = false;
        list.placeDividerBefore(li);
      }
      if (document.visibilityState !== 'visible') { state.unseen += 1; app.sidebar.updateTitle(); }
      app.notices.announce(f);
      app.notices.notify(f);
    }
    list.relayout();
    if (stick) list.scrollToBottom();
    scheduleRead();
  }

  // Render one message of this room (from `joined` or `message`); its <li>, or null if
  // it is old or a duplicate.
  function accept(m) {
    if (!m || !Number.isInteger(m.id) || state.lastId === null) return null;
    let pend = null;
    if (m.user === config.me && typeof m.client_id === 'string') {
      pend = list.pending.get(m.client_id) || null;
      list.pending.delete(m.client_id);
      app.outbox.remove(m.client_id); // it is stored: never send it again
    }
    const existing = list.findById(m.id);
    if (existing) {
      // An item confirmed by its ack: merge the server's version into it.
      if (pend && pend !== existing) pend.remove();
      existing.classList.remove('acked');
      const time = existing.querySelector('time');
      if (time) setTime(time, m.ts);
      list.update(existing, m); // issue 12: its server state (edits, reactions, ...)
      state.lastId = Math.max(state.lastId, m.id);
      return null;
    }
    if (pend) pend.remove();
    if (m.id <= state.lastId) return null;
    const li = list.build(m);
    list.insertConfirmed(li, m.id);
    state.lastId = m.id;
    return li;
  }

  // ---- issue 12: changes to messages (SPEC §5) ----
  function seeRev(rev) {
    if (Number.isInteger(rev)) state.rev = state.rev === null ? rev : Math.max(state.rev, rev);
  }

  // An `edited`, `deleted`, `reaction` or `updated` frame of this room.
  function onChange(f) {
    if (f.type === 'updated') { // after the server's resubscribe: like an entry of joined.updates
      const m = f.message;
      const li = m && Number.isInteger(m.id) ? list.findById(m.id) : null;
      seeRev(f.rev);
      if (li) list.update(li, m);
      return;
    }
    if (!Number.isInteger(f.id)) return;
    seeRev(f.rev);
    const li = list.findById(f.id);
    if (!li) return; // not loaded: a later join brings its state
    const item = list.item(li) || {};
    if (f.type === 'edited' && typeof f.text === 'string') list.update(li, { text: f.text, edited: f.edited });
    else if (f.type === 'deleted') {
      list.update(li, { deleted: true, text: '', reactions: {}, reply_to: undefined, mentions: [], files: [] });
      if (app.editing) app.editing.dropped(li);
    } else if (f.type === 'reaction' && typeof f.emoji === 'string' && typeof f.user === 'string') {
      list.update(li, { reactions: withReaction(item.reactions, f.emoji, f.user, f.on === true) });
    }
  }

  // The join failed because storage is down: try again while the socket lasts.
  function onJoinError(code) {
    if (conn.isReady() || code !== 'unavailable') return;
    setTimeout(() => { if (conn.isOpen() && !conn.isReady()) join(); }, JOIN_RETRY_MS);
  }

  // ---- read markers: the newest message counts as read once it has been on screen ----
  function newestVisible() {
    const items = els.list.querySelectorAll('li[data-id]');
    const last = items[items.length - 1];
    if (!last) return false;
    const r = last.getBoundingClientRect();
    const lr = els.list.getBoundingClientRect();
    const top = Math.max(lr.top, 0);
    const bottom = Math.min(lr.bottom, window.innerHeight || document.documentElement.clientHeight);
    return r.bottom > top && r.top < bottom;
  }

  function scheduleRead() {
    if (state.readTimer === null) state.readTimer = setTimeout(markRead, READ_DELAY_MS);
  }

  function markRead() {
    state.readTimer = null;
    if (!conn.isReady() || document.visibilityState !== 'visible') return;
    const id = state.lastId;
    if (!id || id <= state.lastReadSent || !(newestVisible() || list.nearBottom())) return;
    conn.send({ type: 'read', room: ROOM, id: id });
    state.lastReadSent = id;
    if (state.unseen) { state.unseen = 0; app.sidebar.updateTitle(); }
  }

  els.list.addEventListener('scroll', scheduleRead, { passive: true });

  return {
    onHello: onHello,
    join: join,
    onJoined: onJoined,
    onMessage: onMessage,
    onChange: onChange,
    onJoinError: onJoinError,
    scheduleRead: scheduleRead,
    unseen() { return state.unseen; },
    // Leaving the page: a read marker still waiting goes now.
    flushRead() {
      if (state.readTimer === null) return;
      clearTimeout(state.readTimer);
      markRead();
    },
    hidden() { state.markNextUnseen = true; },
    visible() {
      state.markNextUnseen = false;
      if (state.unseen) { state.unseen = 0; app.sidebar.updateTitle(); }
      list.relayout(); // "Today" may have become "Yesterday"
      scheduleRead();
    },
  };
}
