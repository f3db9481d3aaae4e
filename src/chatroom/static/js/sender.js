/* Sending: the outbox (store.js) is sent one message at a time, each waiting for its
 * `ack`, which keeps the order and makes a retry with the same client_id safe. Honours
 * `retry_after`, marks refused messages "not sent" with Retry and Discard. */

import { errorText, t } from './i18n.js';
import { newClientId } from './store.js';

const ACK_TIMEOUT_MS = 15000;
const RETRY_MARGIN_MS = 50;

export function createSender(app) {
  const { config, els, conn, list, outbox } = app;
  const ROOM = config.room;
  const state = {
    inflight: null, // client_id of the send awaiting its ack
    ackTimer: null,
    blockedUntil: 0, // rate limited until then
    retryTimer: null,
  };

  function settle(cid) {
    if (state.inflight !== cid) return;
    state.inflight = null;
    clearTimeout(state.ackTimer);
  }

  function submit(text, files, replyTo) {
    const entry = { client_id: newClientId(), room: ROOM, text: text, ts: Date.now() / 1000 };
    if (files && files.length) entry.files = files; // issue 15: uploaded file objects
    if (replyTo) entry.reply_to = replyTo; // issue 12: {id, user, text} of the parent
    outbox.add(entry);
    els.list.append(list.buildPending(entry));
    list.relayout();
    list.scrollToBottom();
    pump();
  }

  // Send the outbox head and wait for its ack.
  function pump() {
    if (state.inflight !== null || !conn.isReady() || Date.now() < state.blockedUntil) return;
    const next = outbox.all().find((e) => !e.failed);
    if (!next) return;
    state.inflight = next.client_id;
    const frame = { type: 'send', room: next.room, text: next.text, client_id: next.client_id };
    if (Array.isArray(next.files) && next.files.length) frame.files = next.files.map((f) => f.id); // issue 15
    if (next.reply_to && Number.isInteger(next.reply_to.id)) frame.reply_to = next.reply_to.id; // issue 12
    conn.send(frame);
    clearTimeout(state.ackTimer);
    state.ackTimer = setTimeout(() => {
      if (state.inflight === next.client_id) { state.inflight = null; pump(); } // same client_id: no duplicate
    }, ACK_TIMEOUT_MS);
  }

  // After a join: the sends still queued for this room (this tab's, another tab's, or
  // from before a reload) at the bottom of the list, and no others.
  function showQueued() {
    const queued = new Set();
    for (const e of outbox.all()) {
      if (e.room !== ROOM) continue;
      queued.add(e.client_id);
      const li = list.pending.get(e.client_id) || list.buildPending(e);
      if (!li.isConnected) els.list.append(li);
    }
    for (const [cid, li] of list.pending) {
      if (!queued.has(cid)) { li.remove(); list.pending.delete(cid); }
    }
  }

  function onAck(f) {
    if (typeof f.client_id !== 'string') return;
    const cid = f.client_id;
    outbox.remove(cid);
    settle(cid);
    const pend = list.pending.get(cid);
    if (pend) {
      list.pending.delete(cid);
      if (f.room === ROOM && Number.isInteger(f.id) && !list.findById(f.id)) list.confirm(pend, f.id);
      else pend.remove();
      list.relayout();
    }
    pump();
  }

  // An error about a send: true if it was one (and is dealt with).
  function onError(code, cid, f) {
    if (code === 'rate_limited') {
      const wait = Math.max(0.05, Number(f.retry_after) || 1);
      state.blockedUntil = Date.now() + wait * 1000;
      if (cid !== null) settle(cid);
      clearTimeout(state.retryTimer);
      state.retryTimer = setTimeout(pump, wait * 1000 + RETRY_MARGIN_MS);
      const seconds = wait < 1 ? wait.toFixed(1) : String(Math.ceil(wait));
      app.notices.alert(code, errorText(code) + ' ' + t('retrying', { seconds: seconds }));
      return true;
    }
    if (cid === null || !(list.pending.has(cid) || state.inflight === cid || outbox.find(cid))) return false;
    settle(cid);
    outbox.update(cid, { failed: true, code: code });
    const li = list.pending.get(cid);
    if (li) { list.setPendingState(li, 'failed', code); list.relayout(); }
    app.notices.alert(code, errorText(code));
    pump();
    return true;
  }

  // Retry and Discard on a message that was not sent.
  els.list.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const li = button && button.closest('li[data-client-id]');
    if (!li) return;
    const cid = li.dataset.clientId;
    if (button.dataset.action === 'retry') {
      const entry = outbox.find(cid);
      if (!entry) { li.remove(); list.pending.delete(cid); list.relayout(); return; }
      outbox.remove(cid);
      outbox.add({ client_id: cid, room: entry.room, text: entry.text, ts: entry.ts, files: entry.files, reply_to: entry.reply_to });
      list.setPendingState(li, 'pending');
      els.list.append(li);
      list.relayout();
      pump();
    } else if (button.dataset.action === 'discard') {
      outbox.remove(cid);
      list.pending.delete(cid);
      li.remove();
      list.relayout();
    }
  });

  return {
    submit: submit,
    pump: pump,
    showQueued: showQueued,
    onAck: onAck,
    onError: onError,
    // The socket is gone: the send in flight is resent (same client_id) after a reconnect.
    dropped() { state.inflight = null; clearTimeout(state.ackTimer); },
  };
}
