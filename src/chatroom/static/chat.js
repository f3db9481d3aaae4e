/* chatroom browser client: the WebSocket protocol of SPEC §3, no framework, no build step.
 *
 * User data is only ever written with textContent (never innerHTML), so message text
 * such as "<img src=x onerror=alert(1)>" is shown as those characters. */
(function () {
  'use strict';

  const body = document.body;
  const ME = body.dataset.user;
  const ROOM = body.dataset.room;
  if (!ME || !ROOM) return; // not the chat page

  const $ = (id) => document.getElementById(id);
  const els = {
    list: $('messages'),
    state: $('connection-state'),
    online: $('online-list'),
    typing: $('typing'),
    composer: $('composer'),
    input: $('message'),
    alerts: $('alerts'),
    roomList: $('room-list'),
    createForm: $('create-room'),
    createError: $('create-room-error'),
    gap: $('gap'),
  };
  if (!els.list || !els.composer || !els.input) return;
  if (!els.alerts) {
    els.alerts = document.createElement('div');
    els.alerts.id = 'alerts';
    els.alerts.className = 'alerts';
    els.alerts.setAttribute('role', 'alert');
    els.composer.before(els.alerts);
  }

  const RECONNECT_BASE_MS = 500;
  const RECONNECT_MAX_MS = 15000;
  const TYPING_SEND_MS = 2000;
  const TYPING_SHOW_MS = 4000;
  const PING_IDLE_MS = 25000;
  const PONG_TIMEOUT_MS = 10000;
  const CONNECT_TIMEOUT_MS = 15000;
  const ACK_TIMEOUT_MS = 15000;
  const READ_DELAY_MS = 1000;
  const ROOMS_POLL_MS = 30000;

  // ---- storage (localStorage, with an in-memory fallback when it is unavailable) ----
  const memory = new Map();
  const store = {
    get(key, fallback) {
      let raw = memory.has(key) ? memory.get(key) : null;
      if (raw === null) {
        try { raw = window.localStorage.getItem(key); } catch (e) { raw = null; }
      }
      if (raw === null) return fallback;
      try { return JSON.parse(raw); } catch (e) { return fallback; }
    },
    set(key, value) {
      const raw = JSON.stringify(value);
      try { window.localStorage.setItem(key, raw); memory.delete(key); } catch (e) { memory.set(key, raw); }
    },
    remove(key) {
      memory.delete(key);
      try { window.localStorage.removeItem(key); } catch (e) { /* unavailable */ }
    },
  };
  const USER_KEY = ME.toLowerCase();
  const OUTBOX_KEY = 'chatroom:outbox:' + USER_KEY;
  const DRAFT_PREFIX = 'chatroom:draft:' + USER_KEY + ':';
  const DRAFT_KEY = DRAFT_PREFIX + ROOM;

  // The outbox: sends not yet acknowledged, in order, with their client_id (so a retry
  // after a dropped connection is never stored twice). Shared by this user's tabs.
  const outbox = {
    all() {
      const list = store.get(OUTBOX_KEY, []);
      if (!Array.isArray(list)) return [];
      return list.filter((e) => e && typeof e.client_id === 'string' &&
        typeof e.room === 'string' && typeof e.text === 'string');
    },
    save(list) { if (list.length) store.set(OUTBOX_KEY, list); else store.remove(OUTBOX_KEY); },
    add(entry) { const list = this.all(); list.push(entry); this.save(list); },
    find(cid) { return this.all().find((e) => e.client_id === cid); },
    remove(cid) {
      const list = this.all();
      const kept = list.filter((e) => e.client_id !== cid);
      if (kept.length !== list.length) this.save(kept);
    },
    update(cid, patch) {
      this.save(this.all().map((e) => (e.client_id === cid ? Object.assign({}, e, patch) : e)));
    },
  };

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- times, in the viewer's time zone ----
  const fmtTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const fmtDay = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const fmtYear = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  let fmtFull;
  try {
    fmtFull = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
  } catch (e) {
    fmtFull = fmtYear;
  }

  function setTime(el, ts) {
    const seconds = Number(ts);
    if (!Number.isFinite(seconds)) return;
    const d = new Date(seconds * 1000);
    const now = new Date();
    el.dataset.ts = String(ts);
    el.dateTime = d.toISOString();
    el.title = fmtFull.format(d);
    if (d.toDateString() === now.toDateString()) el.textContent = fmtTime.format(d);
    else if (d.getFullYear() === now.getFullYear()) el.textContent = fmtDay.format(d);
    else el.textContent = fmtYear.format(d);
  }

  // ---- state ----
  let ws = null;
  let gotHello = false;
  let ready = false; // `joined` for the current room received on this socket
  let attempt = 0;
  let reconnectTimer = null;
  let countdownTimer = null;
  let reconnectAt = 0;
  let connectStartedAt = 0;
  let lastSent = 0;
  let awaitingPong = false;
  let pingSentAt = 0;
  let unloading = false;

  let lastId = null; // last message id seen in the current room (null: never joined)
  let joinSince = null; // the `since` of the join in flight
  let inflight = null; // client_id of the send awaiting its ack (one at a time keeps order)
  let ackTimer = null;
  let blockedUntil = 0; // rate limited until then
  let retryTimer = null;
  let lastTypingSent = 0;
  let lastReadSent = 0;
  let readTimer = null;
  let unseen = 0; // messages in the current room that arrived while the tab was hidden
  let pinned = true; // the message list is scrolled to the bottom

  const pendingEls = new Map(); // client_id -> <li> of a not yet confirmed message
  const unread = new Map(); // room -> unread count (other rooms)
  const onlineUsers = new Set();
  const typers = new Map(); // user -> timeout

  // ---- connection state display ----
  function setState(state, seconds) {
    const text = {
      connecting: 'connecting…',
      connected: 'connected',
      reconnecting: 'reconnecting in ' + seconds + 's',
      offline: 'offline',
    }[state];
    if (!els.state) return;
    els.state.dataset.state = state;
    if (els.state.textContent !== text) els.state.textContent = text;
  }

  function isOpen() { return ws !== null && ws.readyState === WebSocket.OPEN; }
  function isReady() { return isOpen() && ready; }

  function sendFrame(frame) {
    if (!isOpen()) return false;
    ws.send(JSON.stringify(frame));
    lastSent = Date.now();
    return true;
  }

  // ---- connecting and reconnecting ----
  function clearReconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    reconnectTimer = null;
    countdownTimer = null;
  }

  function connect() {
    clearReconnect();
    if (ws || unloading) return;
    if (navigator.onLine === false) { setState('offline'); return; }
    setState('connecting');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    gotHello = false;
    ready = false;
    awaitingPong = false;
    connectStartedAt = Date.now();
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      awaitingPong = false;
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame && typeof frame === 'object') handleFrame(frame);
    };
    sock.onclose = () => { if (ws === sock) dropped(); };
    sock.onerror = () => { /* onclose follows */ };
  }

  function dropped() {
    const hadHello = gotHello;
    ws = null;
    gotHello = false;
    ready = false;
    inflight = null;
    clearTimeout(ackTimer);
    awaitingPong = false;
    clearTypers();
    if (unloading) return;
    if (!hadHello) checkSignedIn();
    scheduleReconnect();
  }

  // Give up on a socket that stopped answering (e.g. after sleep) without waiting for TCP.
  function abandonSocket() {
    const sock = ws;
    if (!sock) return;
    sock.onmessage = sock.onclose = sock.onerror = null;
    try { sock.close(); } catch (e) { /* already closed */ }
    dropped();
  }

  function scheduleReconnect() {
    clearReconnect();
    if (unloading) return;
    if (navigator.onLine === false) { setState('offline'); return; }
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * Math.pow(2, attempt));
    attempt = Math.min(attempt + 1, 10);
    const delay = base / 2 + Math.random() * (base / 2);
    reconnectAt = Date.now() + delay;
    reconnectTimer = setTimeout(connect, delay);
    const tick = () => setState('reconnecting', Math.max(1, Math.ceil((reconnectAt - Date.now()) / 1000)));
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  function reconnectNow() {
    if (ws || unloading) return;
    attempt = 0;
    connect();
  }

  // The socket answers 401 before the upgrade, which a browser cannot see: ask the API.
  function checkSignedIn() {
    fetch('/api/rooms', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then((res) => { if (res.status === 401) goToLogin(); })
      .catch(() => { /* server unreachable: keep retrying */ });
  }

  function goToLogin() {
    unloading = true;
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
  }

  // Keep-alive: ping when idle, and drop a socket whose pong never comes.
  setInterval(() => {
    const now = Date.now();
    if (!ws || unloading) return;
    if (ws.readyState === WebSocket.CONNECTING || !gotHello) {
      if (now - connectStartedAt > CONNECT_TIMEOUT_MS) abandonSocket();
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    if (awaitingPong) {
      if (now - pingSentAt > PONG_TIMEOUT_MS) abandonSocket();
    } else if (now - lastSent >= PING_IDLE_MS) {
      sendFrame({ type: 'ping' });
      awaitingPong = true;
      pingSentAt = now;
    }
  }, 5000);

  // ---- frames from the server ----
  function handleFrame(f) {
    switch (f.type) {
      case 'hello': onHello(f); break;
      case 'joined': onJoined(f); break;
      case 'message': onMessage(f); break;
      case 'ack': onAck(f); break;
      case 'presence': onPresence(f); break;
      case 'typing': onTyping(f); break;
      case 'error': onError(f); break;
      default: break; // pong and anything new
    }
  }

  function onHello(f) {
    gotHello = true;
    attempt = 0;
    setState(navigator.onLine === false ? 'offline' : 'connected');
    if (Array.isArray(f.rooms)) {
      for (const r of f.rooms) {
        if (!r || typeof r.name !== 'string') continue;
        ensureRoomItem(r.name);
        unread.set(r.name, r.name === ROOM ? 0 : Math.max(0, Number(r.unread) || 0));
      }
    }
    renderBadges();
    sendJoin();
  }

  function sendJoin() {
    joinSince = lastId;
    const frame = { type: 'join', room: ROOM };
    if (lastId !== null) frame.since = lastId;
    sendFrame(frame);
  }

  function onJoined(f) {
    if (f.room !== ROOM) return;
    const since = joinSince;
    const stick = nearBottom();
    const messages = Array.isArray(f.messages) ? f.messages : [];
    if (since === null || lastId === null) {
      // First join: the server's history replaces the list.
      els.list.replaceChildren();
      for (const li of pendingEls.values()) li.remove();
      lastId = 0;
      setGap(Number(f.missing) || 0);
    } else if (f.gap && Number(f.missing) > 0) {
      const firstPending = els.list.querySelector('li.pending, li.failed');
      els.list.insertBefore(notice(f.missing + ' older messages are no longer kept.'), firstPending);
    }
    for (const m of messages) acceptMessage(m);
    // Sends still queued for this room (this tab's, another tab's, or from before a reload).
    const queued = new Set();
    for (const e of outbox.all()) {
      if (e.room !== ROOM) continue;
      queued.add(e.client_id);
      const li = pendingEls.get(e.client_id) || buildPending(e);
      if (!li.isConnected) els.list.append(li);
    }
    for (const [cid, li] of pendingEls) {
      if (!queued.has(cid)) { li.remove(); pendingEls.delete(cid); }
    }
    onlineUsers.clear();
    if (Array.isArray(f.online)) for (const u of f.online) if (typeof u === 'string') onlineUsers.add(u);
    renderOnline();
    ready = true;
    if (stick || since === null) scrollToBottom();
    pump();
    scheduleRead();
  }

  function onMessage(f) {
    if (!Number.isInteger(f.id) || typeof f.room !== 'string') return;
    if (f.room !== ROOM) {
      if (f.user !== ME) {
        ensureRoomItem(f.room);
        unread.set(f.room, (unread.get(f.room) || 0) + 1);
        renderBadges();
      }
      return;
    }
    dropTyper(f.user);
    const stick = nearBottom() || (f.user === ME && f.client_id && pendingEls.has(f.client_id));
    if (acceptMessage(f)) {
      if (f.user !== ME && document.visibilityState !== 'visible') { unseen += 1; updateTitle(); }
      if (stick) scrollToBottom();
      scheduleRead();
    }
  }

  // Render one message of the current room (from `joined` or `message`); false if old/duplicate.
  function acceptMessage(m) {
    if (!m || !Number.isInteger(m.id) || lastId === null) return false;
    let pend = null;
    if (m.user === ME && typeof m.client_id === 'string') {
      pend = pendingEls.get(m.client_id) || null;
      pendingEls.delete(m.client_id);
      outbox.remove(m.client_id); // it is stored: never send it again
    }
    const existing = findById(m.id);
    if (existing) {
      // An item confirmed by its ack: merge the server's version into it.
      if (pend && pend !== existing) pend.remove();
      existing.classList.remove('acked');
      const t = existing.querySelector('time');
      if (t) setTime(t, m.ts);
      lastId = Math.max(lastId, m.id);
      return false;
    }
    if (m.id <= lastId) {
      if (pend) pend.remove();
      return false;
    }
    if (pend) pend.remove();
    insertConfirmed(buildMessage(m), m.id);
    lastId = m.id;
    return true;
  }

  function onAck(f) {
    if (typeof f.client_id !== 'string') return;
    const cid = f.client_id;
    outbox.remove(cid);
    if (inflight === cid) { inflight = null; clearTimeout(ackTimer); }
    const pend = pendingEls.get(cid);
    if (pend) {
      pendingEls.delete(cid);
      if (f.room === ROOM && Number.isInteger(f.id) && !findById(f.id)) {
        pend.classList.remove('pending', 'failed');
        pend.classList.add('acked');
        pend.dataset.id = String(f.id);
        const status = pend.querySelector('.status');
        if (status) status.remove();
        insertConfirmed(pend, f.id);
      } else {
        pend.remove();
      }
    }
    pump();
  }

  function onError(f) {
    const code = typeof f.code === 'string' ? f.code : 'error';
    const message = typeof f.message === 'string' ? f.message : '';
    const cid = typeof f.client_id === 'string' ? f.client_id : null;
    if (code === 'rate_limited') {
      const wait = Math.max(0.05, Number(f.retry_after) || 1);
      blockedUntil = Date.now() + wait * 1000;
      if (cid !== null && inflight === cid) { inflight = null; clearTimeout(ackTimer); }
      clearTimeout(retryTimer);
      retryTimer = setTimeout(pump, wait * 1000 + 50);
      showAlert(code, message + ' Retrying in ' + (wait < 1 ? wait.toFixed(1) : Math.ceil(wait)) + 's.');
      return;
    }
    if (cid !== null && (pendingEls.has(cid) || inflight === cid || outbox.find(cid))) {
      if (inflight === cid) { inflight = null; clearTimeout(ackTimer); }
      outbox.update(cid, { failed: true, code: code });
      const li = pendingEls.get(cid);
      if (li) setPendingState(li, 'failed', code);
      showAlert(code, message);
      pump();
      return;
    }
    if (f.room === ROOM && !ready && code === 'unavailable') {
      setTimeout(() => { if (isOpen() && !ready) sendJoin(); }, 3000);
    }
    showAlert(code, message);
  }

  function onPresence(f) {
    if (f.room !== ROOM || typeof f.user !== 'string') return;
    if (f.state === 'online') onlineUsers.add(f.user);
    else if (f.state === 'offline') { onlineUsers.delete(f.user); dropTyper(f.user); }
    renderOnline();
  }

  function onTyping(f) {
    if (f.room !== ROOM || typeof f.user !== 'string' || f.user === ME) return;
    clearTimeout(typers.get(f.user));
    typers.set(f.user, setTimeout(() => dropTyper(f.user), TYPING_SHOW_MS));
    renderTyping();
  }

  // ---- the message list ----
  function buildMessage(m) {
    const li = document.createElement('li');
    li.className = 'message';
    if (m.user === ME) li.classList.add('mine');
    if (Number.isInteger(m.id)) li.dataset.id = String(m.id);
    const author = document.createElement('span');
    author.className = 'author';
    author.textContent = String(m.user);
    const time = document.createElement('time');
    setTime(time, m.ts);
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(m.text);
    li.append(author, ' ', time, ' ', text);
    return li;
  }

  function buildPending(entry) {
    const li = buildMessage({ user: ME, ts: entry.ts, text: entry.text });
    const status = document.createElement('span');
    status.className = 'status';
    li.append(' ', status);
    li.dataset.clientId = entry.client_id;
    setPendingState(li, entry.failed ? 'failed' : 'pending', entry.code);
    pendingEls.set(entry.client_id, li);
    return li;
  }

  function setPendingState(li, state, code) {
    li.classList.toggle('pending', state === 'pending');
    li.classList.toggle('failed', state === 'failed');
    const status = li.querySelector('.status');
    if (!status) return;
    status.replaceChildren();
    if (state === 'pending') {
      status.textContent = 'sending…';
      return;
    }
    status.append('not sent' + (code ? ' (' + code + ')' : '') + ' ');
    status.append(actionButton('retry', 'Retry'), ' ', actionButton('discard', 'Discard'));
  }

  function actionButton(action, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link-button';
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  function notice(text) {
    const li = document.createElement('li');
    li.className = 'notice gap';
    li.textContent = text;
    return li;
  }

  function setGap(missing) {
    if (!els.gap) return;
    els.gap.hidden = !(missing > 0);
    els.gap.textContent = missing > 0 ? missing + ' older messages are no longer kept.' : '';
  }

  function findById(id) {
    return els.list.querySelector('li[data-id="' + Number(id) + '"]');
  }

  // Confirmed messages stay in id order, above the pending/failed ones at the bottom.
  function insertConfirmed(li, id) {
    for (let node = els.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node === li) continue;
      if (node.classList.contains('notice')) { node.after(li); return; }
      if (!node.dataset.id) continue; // pending or failed
      const nid = Number(node.dataset.id);
      if (nid === id) { node.replaceWith(li); return; }
      if (nid < id) { node.after(li); return; }
    }
    els.list.prepend(li);
  }

  function nearBottom() {
    const l = els.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  function scrollToBottom() {
    els.list.scrollTop = els.list.scrollHeight;
    pinned = true;
  }

  // Stay at the bottom when the list changes size (alerts, typing line, window resize).
  els.list.addEventListener('scroll', () => { pinned = nearBottom(); }, { passive: true });
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => { if (pinned) els.list.scrollTop = els.list.scrollHeight; }).observe(els.list);
  }

  els.list.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const li = button && button.closest('li[data-client-id]');
    if (!li) return;
    const cid = li.dataset.clientId;
    if (button.dataset.action === 'retry') {
      const entry = outbox.find(cid);
      if (!entry) { li.remove(); pendingEls.delete(cid); return; }
      outbox.remove(cid);
      outbox.add({ client_id: cid, room: entry.room, text: entry.text, ts: entry.ts });
      setPendingState(li, 'pending');
      els.list.append(li);
      pump();
    } else if (button.dataset.action === 'discard') {
      outbox.remove(cid);
      pendingEls.delete(cid);
      li.remove();
    }
  });

  // ---- sending ----
  function submitMessage() {
    const text = els.input.value;
    if (!text.trim()) return;
    const entry = { client_id: newClientId(), room: ROOM, text: text, ts: Date.now() / 1000 };
    outbox.add(entry);
    els.list.append(buildPending(entry));
    scrollToBottom();
    els.input.value = '';
    saveDraft();
    pump();
  }

  // Send the outbox head and wait for its ack: order is kept and retry_after is honoured.
  function pump() {
    if (inflight !== null || !isReady() || Date.now() < blockedUntil) return;
    const next = outbox.all().find((e) => !e.failed);
    if (!next) return;
    inflight = next.client_id;
    sendFrame({ type: 'send', room: next.room, text: next.text, client_id: next.client_id });
    clearTimeout(ackTimer);
    ackTimer = setTimeout(() => {
      if (inflight === next.client_id) { inflight = null; pump(); } // same client_id: no duplicate
    }, ACK_TIMEOUT_MS);
  }

  els.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitMessage();
    els.input.focus();
  });

  els.input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || ev.shiftKey || ev.altKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    submitMessage();
  });

  els.input.addEventListener('input', () => {
    saveDraft();
    const now = Date.now();
    if (els.input.value && isReady() && now - lastTypingSent >= TYPING_SEND_MS) {
      lastTypingSent = now;
      sendFrame({ type: 'typing', room: ROOM });
    }
  });

  function saveDraft() {
    if (els.input.value) store.set(DRAFT_KEY, els.input.value);
    else store.remove(DRAFT_KEY);
  }

  const draft = store.get(DRAFT_KEY, '');
  if (typeof draft === 'string' && draft && !els.input.value) els.input.value = draft;

  // ---- typing, presence ----
  function dropTyper(user) {
    if (!typers.has(user)) return;
    clearTimeout(typers.get(user));
    typers.delete(user);
    renderTyping();
  }

  function clearTypers() {
    for (const t of typers.values()) clearTimeout(t);
    typers.clear();
    renderTyping();
  }

  function renderTyping() {
    if (!els.typing) return;
    const names = Array.from(typers.keys());
    let text = '';
    if (names.length === 1) text = names[0] + ' is typing…';
    else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
    else if (names.length > 2) text = 'Several people are typing…';
    if (els.typing.textContent !== text) els.typing.textContent = text;
  }

  function dmRoom(a, b) {
    return 'dm:' + [a.toLowerCase(), b.toLowerCase()].sort().join(':');
  }

  function renderOnline() {
    if (!els.online) return;
    const names = Array.from(onlineUsers).sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
    els.online.replaceChildren(...names.map((name) => {
      const li = document.createElement('li');
      li.dataset.user = name;
      if (name === ME) {
        li.className = 'me';
        li.textContent = name + ' (you)';
      } else {
        const a = document.createElement('a');
        a.href = '/rooms/' + encodeURIComponent(dmRoom(ME, name));
        a.title = 'Direct message ' + name;
        a.textContent = name;
        li.append(a);
      }
      return li;
    }));
  }

  // ---- rooms, unread badges, title ----
  function roomItem(name) {
    if (!els.roomList) return null;
    for (const li of els.roomList.children) if (li.dataset.room === name) return li;
    return null;
  }

  function ensureRoomItem(name) {
    if (!els.roomList || roomItem(name)) return;
    const li = document.createElement('li');
    li.dataset.room = name;
    const a = document.createElement('a');
    a.href = '/rooms/' + encodeURIComponent(name);
    a.textContent = name;
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.hidden = true;
    li.append(a, ' ', badge);
    els.roomList.append(li);
  }

  function renderBadges() {
    unread.set(ROOM, 0);
    if (els.roomList) {
      for (const li of els.roomList.children) {
        const badge = li.querySelector('.badge');
        if (!badge || !li.dataset.room) continue;
        const n = unread.get(li.dataset.room) || 0;
        badge.textContent = String(n);
        badge.dataset.unread = String(n);
        badge.setAttribute('aria-label', n + ' unread');
        badge.hidden = n === 0;
      }
    }
    updateTitle();
  }

  function updateTitle() {
    let total = unseen;
    for (const [room, n] of unread) if (room !== ROOM) total += n;
    const title = (total > 0 ? '(' + total + ') ' : '') + ROOM + ' · chatroom';
    if (document.title !== title) document.title = title;
  }

  function refreshRooms() {
    fetch('/api/rooms', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
      .then((res) => {
        if (res.status === 401) { goToLogin(); return null; }
        return res.ok ? res.json() : null;
      })
      .then((data) => {
        if (!data || !Array.isArray(data.rooms)) return;
        for (const r of data.rooms) {
          if (!r || typeof r.name !== 'string' || (r.is_direct && !r.member)) continue;
          ensureRoomItem(r.name);
          unread.set(r.name, r.member && r.name !== ROOM ? Math.max(0, Number(r.unread) || 0) : 0);
        }
        renderBadges();
      })
      .catch(() => { /* offline or server down: try again later */ });
  }

  setInterval(() => { if (document.visibilityState === 'visible' && isReady()) refreshRooms(); }, ROOMS_POLL_MS);

  // ---- read markers ----
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
    if (readTimer === null) readTimer = setTimeout(markRead, READ_DELAY_MS);
  }

  function markRead() {
    readTimer = null;
    if (!isReady() || document.visibilityState !== 'visible') return;
    if (!lastId || lastId <= lastReadSent || !(newestVisible() || nearBottom())) return;
    sendFrame({ type: 'read', room: ROOM, id: lastId });
    lastReadSent = lastId;
    if (unseen) { unseen = 0; updateTitle(); }
  }

  els.list.addEventListener('scroll', scheduleRead, { passive: true });

  // ---- alerts near the composer ----
  function showAlert(code, message) {
    for (const old of els.alerts.querySelectorAll('.alert')) if (old.dataset.code === code) old.remove();
    const p = document.createElement('p');
    p.className = 'alert';
    p.dataset.code = code;
    const strong = document.createElement('strong');
    strong.textContent = code;
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'dismiss';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.addEventListener('click', () => p.remove());
    const span = document.createElement('span');
    span.append(strong, message ? ': ' + message : '');
    p.append(span, close);
    els.alerts.append(p);
    while (els.alerts.children.length > 3) els.alerts.firstElementChild.remove();
    setTimeout(() => p.remove(), 10000);
  }

  // ---- create room ----
  function cookie(name) {
    for (const part of document.cookie.split(';')) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === name) {
        const value = part.slice(i + 1).trim();
        try { return decodeURIComponent(value); } catch (e) { return value; }
      }
    }
    return '';
  }

  function xsrfToken() {
    const field = document.querySelector('input[name="_xsrf"]');
    return cookie('_xsrf') || (field ? field.value : '');
  }

  if (els.createForm) {
    els.createForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = els.createForm.querySelector('input[name="name"]');
      const button = els.createForm.querySelector('button[type="submit"]');
      const name = input ? input.value.trim() : '';
      if (!name) return;
      const showError = (text) => {
        if (!els.createError) return;
        els.createError.textContent = text;
        els.createError.hidden = !text;
      };
      showError('');
      if (button) button.disabled = true;
      const exists = 'A room named "' + name + '" already exists.';
      fetch('/api/rooms', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } })
        .then((res) => (res.ok ? res.json() : null))
        .catch(() => null)
        .then((data) => {
          const rooms = data && Array.isArray(data.rooms) ? data.rooms : [];
          if (rooms.some((r) => r && r.name === name)) return { res: { status: 409 }, data: null };
          return fetch('/api/rooms', {
            method: 'POST',
            credentials: 'same-origin',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-XSRFToken': xsrfToken() },
            body: JSON.stringify({ name: name }),
          }).then((res) => res.json().catch(() => ({})).then((body) => ({ res: res, data: body })));
        })
        .then(({ res, data }) => {
          if (res.status === 201) {
            const created = data && data.room && typeof data.room.name === 'string' ? data.room.name : name;
            location.assign('/rooms/' + encodeURIComponent(created));
            return;
          }
          if (res.status === 401) { goToLogin(); return; }
          const err = data && data.error;
          let text = err && typeof err.message === 'string' ? err.message : 'Could not create the room (' + res.status + ').';
          if (res.status === 409) text = exists;
          showError(text);
        })
        .catch(() => showError('Could not reach the server; try again.'))
        .finally(() => { if (button) button.disabled = false; });
    });
  }

  // ---- logout: forget this user's drafts and queued messages on this device ----
  const logoutForm = document.querySelector('form.logout');
  if (logoutForm) {
    logoutForm.addEventListener('submit', () => {
      unloading = true;
      store.remove(OUTBOX_KEY);
      try {
        const keys = [];
        for (let i = 0; i < window.localStorage.length; i++) keys.push(window.localStorage.key(i));
        for (const k of keys) if (k && k.startsWith(DRAFT_PREFIX)) window.localStorage.removeItem(k);
      } catch (e) { /* unavailable */ }
    });
  }

  // ---- window events ----
  window.addEventListener('online', () => {
    if (ws) { if (gotHello) setState('connected'); return; }
    reconnectNow();
  });
  window.addEventListener('offline', () => {
    setState('offline');
    if (!ws) clearReconnect();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    if (unseen) { unseen = 0; updateTitle(); }
    scheduleRead();
    if (!ws && reconnectTimer !== null) reconnectNow();
    else if (isReady()) refreshRooms();
  });
  window.addEventListener('focus', scheduleRead);
  window.addEventListener('pagehide', () => {
    if (readTimer !== null) { clearTimeout(readTimer); markRead(); }
    unloading = true;
    clearReconnect();
    const sock = ws;
    if (sock) {
      sock.onmessage = sock.onclose = sock.onerror = null;
      try { sock.close(1000); } catch (e) { /* closed */ }
      dropped();
    }
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) { unloading = false; reconnectNow(); }
  });

  // ---- start ----
  for (const t of els.list.querySelectorAll('time[data-ts]')) setTime(t, t.dataset.ts);
  for (const li of els.list.querySelectorAll('li.message')) {
    const author = li.querySelector('.author');
    if (author && author.textContent === ME) li.classList.add('mine');
  }
  const current = roomItem(ROOM);
  if (current) {
    current.classList.add('current');
    const link = current.querySelector('a');
    if (link) link.setAttribute('aria-current', 'page');
  }
  renderBadges();
  scrollToBottom();
  connect();
})();
