/* chatroom browser client: the WebSocket protocol of SPEC §3, no framework, no build step.
 *
 * User data is only ever written with textContent (never innerHTML), so message text
 * such as "<img src=x onerror=alert(1)>" is shown as those characters.
 *
 * The page works without this script (server-rendered history, a plain form POST to
 * send); with it, the form is intercepted and everything is live. Translated strings
 * come from the page's <script type="application/json" id="i18n"> block. */
(function () {
  'use strict';

  document.documentElement.classList.add('js');

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
    announcer: $('announcer'),
    roomList: $('room-list'),
    dmList: $('dm-list'),
    createForm: $('create-room'),
    createError: $('create-room-error'),
    gap: $('gap'),
    notify: $('notify-toggle'),
    toggle: $('rooms-toggle'),
    totalUnread: $('total-unread'),
    sidebar: $('sidebar'),
    backdrop: $('backdrop'),
  };
  if (!els.list || !els.composer || !els.input) return;
  if (!els.alerts) {
    els.alerts = document.createElement('div');
    els.alerts.id = 'alerts';
    els.alerts.className = 'alerts';
    els.alerts.setAttribute('role', 'alert');
    els.composer.before(els.alerts);
  }

  // ---- translations ----
  const LANG = document.documentElement.lang || undefined;
  let STRINGS = {};
  try {
    const block = $('i18n');
    STRINGS = block ? JSON.parse(block.textContent) || {} : {};
  } catch (e) {
    STRINGS = {};
  }
  const ENGLISH = {
    state_connecting: 'connecting…',
    state_connected: 'connected',
    state_reconnecting: 'reconnecting in %(seconds)ss',
    state_offline: 'offline',
  };
  // t('typing_one', {user: 'bob'}): the translated string with %(name)s filled in.
  function t(key, params) {
    let text = typeof STRINGS[key] === 'string' ? STRINGS[key] : ENGLISH[key] || key;
    if (params) {
      text = text.replace(/%\((\w+)\)s/g, (all, name) => (name in params ? String(params[name]) : all));
    }
    return text;
  }
  const MAX_CHARS = Number(body.dataset.maxChars) || 4000;
  function errorText(code) {
    const known = STRINGS.errors && typeof STRINGS.errors[code] === 'string' ? STRINGS.errors[code] : null;
    return known || t('error', { code: code });
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
  const GROUP_SECONDS = 300;
  const AVATAR_HUES = 12;

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
  const NOTIFY_KEY = 'chatroom:notify:' + USER_KEY;

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

  // ---- names ----
  function dmRoom(a, b) {
    return 'dm:' + [a.toLowerCase(), b.toLowerCase()].sort().join(':');
  }
  function isDm(room) { return room.startsWith('dm:'); }
  function dmPeer(room) {
    const parts = room.split(':');
    return parts[1] === USER_KEY ? parts[2] : parts[1];
  }
  function roomLabel(room) { return isDm(room) ? dmPeer(room) : room; }
  function roomUrl(room) { return '/rooms/' + encodeURIComponent(room).replace(/%3A/gi, ':'); }
  const ROOM_LABEL = roomLabel(ROOM);

  function avatarHue(name) {
    let h = 0;
    const s = String(name).toLowerCase();
    for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
    return 'hue-' + (h % AVATAR_HUES);
  }

  // ---- times and days, in the viewer's time zone and the page's language ----
  function format(options) {
    try { return new Intl.DateTimeFormat(LANG, options); } catch (e) { return new Intl.DateTimeFormat(undefined, options); }
  }
  const fmtTime = format({ hour: '2-digit', minute: '2-digit' });
  const fmtDate = format({ weekday: 'long', month: 'long', day: 'numeric' });
  const fmtDateYear = format({ weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  let fmtFull;
  try { fmtFull = format({ dateStyle: 'full', timeStyle: 'long' }); } catch (e) { fmtFull = fmtDateYear; }
  let relative = null;
  try { relative = new Intl.RelativeTimeFormat(LANG, { numeric: 'auto' }); } catch (e) { relative = null; }

  function setTime(el, ts) {
    const seconds = Number(ts);
    if (!Number.isFinite(seconds)) return;
    const d = new Date(seconds * 1000);
    el.dataset.ts = String(ts);
    el.dateTime = d.toISOString();
    el.title = fmtFull.format(d);
    el.textContent = fmtTime.format(d);
  }

  function dayKey(seconds) {
    const d = new Date(seconds * 1000);
    return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
  }

  function dayLabel(seconds) {
    const d = new Date(seconds * 1000);
    const today = new Date();
    const midnight = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
    const days = Math.round((midnight(d) - midnight(today)) / 86400000);
    if (relative && (days === 0 || days === -1)) {
      const word = relative.format(days, 'day');
      return word.charAt(0).toLocaleUpperCase(LANG) + word.slice(1);
    }
    return (d.getFullYear() === today.getFullYear() ? fmtDate : fmtDateYear).format(d);
  }

  function messageTs(li) {
    const time = li.querySelector('time');
    const ts = time ? Number(time.dataset.ts) : NaN;
    return Number.isFinite(ts) ? ts : null;
  }

  // Day separators before the first message of each local day, and consecutive messages
  // of one author grouped under one header. Cheap enough to redo after every change.
  function relayout() {
    const keep = new Set();
    let prev = null;
    let prevDay = null;
    let prevTs = null;
    for (const li of Array.from(els.list.children)) {
      if (!li.classList.contains('message')) continue;
      const ts = messageTs(li);
      const day = ts === null ? prevDay : dayKey(ts);
      let newDay = false;
      if (day !== null && day !== prevDay) {
        newDay = true;
        let anchor = li;
        const before = li.previousElementSibling;
        if (before && before.classList.contains('divider')) anchor = before;
        let sep = anchor.previousElementSibling;
        if (!(sep && sep.classList.contains('day') && sep.dataset.day === day)) {
          sep = document.createElement('li');
          sep.className = 'day';
          sep.dataset.day = day;
          sep.append(document.createElement('span'));
          anchor.before(sep);
        }
        const label = dayLabel(ts);
        if (sep.firstElementChild.textContent !== label) sep.firstElementChild.textContent = label;
        keep.add(sep);
      }
      const cont = !newDay && prev !== null && li.previousElementSibling === prev &&
        prev.dataset.user === li.dataset.user && ts !== null && prevTs !== null &&
        ts - prevTs < GROUP_SECONDS && !li.classList.contains('failed') && !prev.classList.contains('failed');
      li.classList.toggle('cont', cont);
      prev = li;
      prevDay = day;
      prevTs = ts;
    }
    for (const sep of Array.from(els.list.querySelectorAll(':scope > li.day'))) if (!keep.has(sep)) sep.remove();
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
  let firstUnread; // undefined until the first hello: the id the "new messages" divider precedes
  let markNextUnseen = false; // the tab was hidden: the next message from others gets the divider

  const pendingEls = new Map(); // client_id -> <li> of a not yet confirmed message
  const unread = new Map(); // room -> unread count (other rooms)
  const otherLast = new Map(); // other room -> newest message id this page has accounted for
  const helloLast = new Map(); // other room -> its last_id in this socket's hello
  const onlineUsers = new Set();
  const typers = new Map(); // user -> timeout

  // ---- connection state display ----
  function setState(state, seconds) {
    const text = t('state_' + state, { seconds: seconds });
    if (!els.state) return;
    if (els.state.dataset.state !== state) els.state.dataset.state = state;
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
    if (!hadHello && navigator.onLine !== false) checkSignedIn();
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
    const rooms = Array.isArray(f.rooms) ? f.rooms : [];
    helloLast.clear();
    for (const r of rooms) {
      if (!r || typeof r.name !== 'string') continue;
      const last = Math.max(0, Number(r.last_id) || 0);
      const count = Math.max(0, Number(r.unread) || 0);
      if (r.name === ROOM) {
        if (firstUnread === undefined) firstUnread = count > 0 ? last - count + 1 : null;
        continue;
      }
      ensureRoomItem(r.name);
      unread.set(r.name, count);
      helloLast.set(r.name, last);
    }
    if (firstUnread === undefined) firstUnread = null;
    renderBadges();
    sendJoin();
    // The user's other rooms too (from where this page left off), for live unread
    // counts and notifications; only `since` them, so no history is resent.
    for (const [room, last] of helloLast) {
      if (!otherLast.has(room)) otherLast.set(room, last);
      sendFrame({ type: 'join', room: room, since: otherLast.get(room) });
    }
  }

  function sendJoin() {
    joinSince = lastId;
    const frame = { type: 'join', room: ROOM };
    if (lastId !== null) frame.since = lastId;
    sendFrame(frame);
  }

  function onJoined(f) {
    if (f.room !== ROOM) { onOtherJoined(f); return; }
    const since = joinSince;
    const stick = nearBottom();
    const messages = Array.isArray(f.messages) ? f.messages : [];
    if (since === null || lastId === null) {
      // First join: the server's history replaces the server-rendered list.
      els.list.replaceChildren();
      for (const li of pendingEls.values()) li.remove();
      lastId = 0;
      setGap(Number(f.missing) || 0);
    } else if (f.gap && Number(f.missing) > 0) {
      const firstPending = els.list.querySelector('li.pending, li.failed');
      els.list.insertBefore(notice(gapText(Number(f.missing))), firstPending);
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
    let divider = null;
    if (since === null && firstUnread) divider = placeDivider(firstUnread);
    relayout();
    onlineUsers.clear();
    if (Array.isArray(f.online)) for (const u of f.online) if (typeof u === 'string') onlineUsers.add(u);
    renderOnline();
    ready = true;
    if (divider && els.list.scrollHeight > els.list.clientHeight) {
      els.list.scrollTop = Math.max(0, divider.offsetTop - els.list.offsetTop - 8);
      pinned = nearBottom();
    } else if (stick || since === null) {
      scrollToBottom();
    }
    pump();
    scheduleRead();
  }

  function onOtherJoined(f) {
    if (typeof f.room !== 'string' || !otherLast.has(f.room)) return;
    // Messages after this socket's hello are not in its unread count yet.
    const counted = helloLast.has(f.room) ? helloLast.get(f.room) : otherLast.get(f.room);
    let last = otherLast.get(f.room);
    let added = 0;
    for (const m of Array.isArray(f.messages) ? f.messages : []) {
      if (!m || !Number.isInteger(m.id)) continue;
      if (m.id > counted && m.id > last && m.user !== ME) added += 1;
      last = Math.max(last, m.id);
    }
    otherLast.set(f.room, last);
    if (added) { unread.set(f.room, (unread.get(f.room) || 0) + added); renderBadges(); }
  }

  function onMessage(f) {
    if (!Number.isInteger(f.id) || typeof f.room !== 'string') return;
    if (f.room !== ROOM) {
      const seen = otherLast.has(f.room) ? otherLast.get(f.room) : 0;
      if (f.id <= seen) return;
      otherLast.set(f.room, f.id);
      if (f.user !== ME) {
        ensureRoomItem(f.room);
        unread.set(f.room, (unread.get(f.room) || 0) + 1);
        renderBadges();
        notify(f);
      }
      return;
    }
    dropTyper(f.user);
    const stick = nearBottom() || (f.user === ME && f.client_id && pendingEls.has(f.client_id));
    const li = acceptMessage(f);
    if (li) {
      if (f.user !== ME) {
        if (markNextUnseen && document.visibilityState !== 'visible') {
          markNextUnseen = false;
          placeDividerBefore(li);
        }
        if (document.visibilityState !== 'visible') { unseen += 1; updateTitle(); }
        announce(f);
        notify(f);
      }
      relayout();
      if (stick) scrollToBottom();
      scheduleRead();
    }
  }

  // Render one message of the current room (from `joined` or `message`); its <li>, or
  // null if it is old or a duplicate.
  function acceptMessage(m) {
    if (!m || !Number.isInteger(m.id) || lastId === null) return null;
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
      const time = existing.querySelector('time');
      if (time) setTime(time, m.ts);
      lastId = Math.max(lastId, m.id);
      return null;
    }
    if (m.id <= lastId) {
      if (pend) pend.remove();
      return null;
    }
    if (pend) pend.remove();
    const li = buildMessage(m);
    insertConfirmed(li, m.id);
    lastId = m.id;
    return li;
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
      relayout();
    }
    pump();
  }

  function onError(f) {
    const code = typeof f.code === 'string' ? f.code : 'error';
    const cid = typeof f.client_id === 'string' ? f.client_id : null;
    if (code === 'rate_limited') {
      const wait = Math.max(0.05, Number(f.retry_after) || 1);
      blockedUntil = Date.now() + wait * 1000;
      if (cid !== null && inflight === cid) { inflight = null; clearTimeout(ackTimer); }
      clearTimeout(retryTimer);
      retryTimer = setTimeout(pump, wait * 1000 + 50);
      const seconds = wait < 1 ? wait.toFixed(1) : String(Math.ceil(wait));
      showAlert(code, errorText(code) + ' ' + t('retrying', { seconds: seconds }));
      return;
    }
    if (cid !== null && (pendingEls.has(cid) || inflight === cid || outbox.find(cid))) {
      if (inflight === cid) { inflight = null; clearTimeout(ackTimer); }
      outbox.update(cid, { failed: true, code: code });
      const li = pendingEls.get(cid);
      if (li) { setPendingState(li, 'failed', code); relayout(); }
      showAlert(code, errorText(code));
      pump();
      return;
    }
    if (typeof f.room === 'string' && f.room !== ROOM && otherLast.has(f.room)) {
      // A background room we could not follow (deleted, or storage down): stay quiet.
      return;
    }
    if (f.room === ROOM && !ready && code === 'unavailable') {
      setTimeout(() => { if (isOpen() && !ready) sendJoin(); }, 3000);
    }
    showAlert(code, errorText(code));
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
    const user = String(m.user);
    const li = document.createElement('li');
    li.className = 'message';
    if (user === ME) li.classList.add('mine');
    if (Number.isInteger(m.id)) li.dataset.id = String(m.id);
    li.dataset.user = user;
    const avatar = document.createElement('span');
    avatar.className = 'avatar ' + avatarHue(user);
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = (Array.from(user)[0] || '?').toUpperCase();
    const main = document.createElement('div');
    main.className = 'body';
    const meta = document.createElement('div');
    meta.className = 'meta';
    const author = document.createElement('span');
    author.className = 'author';
    author.textContent = user;
    const time = document.createElement('time');
    setTime(time, m.ts);
    meta.append(author, ' ', time);
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(m.text);
    main.append(meta, text);
    li.append(avatar, main);
    return li;
  }

  function buildPending(entry) {
    const li = buildMessage({ user: ME, ts: entry.ts, text: entry.text });
    const status = document.createElement('span');
    status.className = 'status';
    li.querySelector('.body').append(status);
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
      status.textContent = t('sending');
      return;
    }
    status.append(t('not_sent') + (code ? ': ' + errorText(code) : '') + ' ');
    status.append(actionButton('retry', t('retry')), ' ', actionButton('discard', t('discard')));
  }

  function actionButton(action, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link-button';
    b.dataset.action = action;
    b.textContent = label;
    return b;
  }

  function gapText(missing) {
    return t(missing === 1 ? 'gap_one' : 'gap_other', { count: missing });
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
    els.gap.textContent = missing > 0 ? gapText(missing) : '';
  }

  function dividerEl() {
    let li = $('new-messages');
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

  // The "new messages" divider before the first message with an id >= firstId that
  // someone else wrote (one's own messages were seen when they were written).
  function placeDivider(firstId) {
    for (const li of els.list.querySelectorAll(':scope > li.message[data-id]')) {
      if (Number(li.dataset.id) >= firstId && li.dataset.user !== ME) return placeDividerBefore(li);
    }
    return null;
  }

  function placeDividerBefore(li) {
    const divider = dividerEl();
    li.before(divider);
    return divider;
  }

  function findById(id) {
    return els.list.querySelector('li[data-id="' + Number(id) + '"]');
  }

  // Confirmed messages stay in id order, above the pending/failed ones at the bottom.
  function insertConfirmed(li, id) {
    for (let node = els.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node === li) continue;
      if (node.classList.contains('notice')) { node.after(li); return; }
      if (!node.dataset.id) continue; // pending or failed, day separators, the divider
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
      if (!entry) { li.remove(); pendingEls.delete(cid); relayout(); return; }
      outbox.remove(cid);
      outbox.add({ client_id: cid, room: entry.room, text: entry.text, ts: entry.ts });
      setPendingState(li, 'pending');
      els.list.append(li);
      relayout();
      pump();
    } else if (button.dataset.action === 'discard') {
      outbox.remove(cid);
      pendingEls.delete(cid);
      li.remove();
      relayout();
    }
  });

  // ---- screen readers: new messages from others, read out politely ----
  function announce(m) {
    if (!els.announcer) return;
    const p = document.createElement('p');
    p.textContent = t('announce', { user: m.user, text: String(m.text).slice(0, 300) });
    els.announcer.append(p);
    while (els.announcer.children.length > 3) els.announcer.firstElementChild.remove();
  }

  // ---- desktop notifications (opt-in) ----
  const canNotify = typeof window.Notification === 'function';

  function notificationsOn() {
    return canNotify && Notification.permission === 'granted' && store.get(NOTIFY_KEY, true) !== false;
  }

  function renderNotifyButton() {
    const b = els.notify;
    if (!b || !canNotify) return;
    b.hidden = false;
    const permission = Notification.permission;
    b.disabled = permission === 'denied';
    b.removeAttribute('aria-pressed');
    if (permission === 'denied') b.textContent = t('notify_blocked');
    else if (permission === 'default') b.textContent = t('notify_enable');
    else {
      const on = notificationsOn();
      b.textContent = t(on ? 'notify_on' : 'notify_off');
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
  }

  if (els.notify && canNotify) {
    els.notify.addEventListener('click', () => {
      if (Notification.permission === 'granted') {
        store.set(NOTIFY_KEY, !notificationsOn());
        renderNotifyButton();
        return;
      }
      if (Notification.permission !== 'default') return;
      const done = () => { store.set(NOTIFY_KEY, true); renderNotifyButton(); };
      const asked = Notification.requestPermission();
      if (asked && typeof asked.then === 'function') asked.then(done, done);
    });
  }

  // Notify about a message from someone else in another room, or in this one while the
  // tab is hidden.
  function notify(m) {
    if (!notificationsOn() || m.user === ME) return;
    if (m.room === ROOM && document.visibilityState === 'visible') return;
    const title = isDm(m.room) ? t('notify_dm', { user: m.user }) : t('notify_room', { user: m.user, room: m.room });
    try {
      const n = new Notification(title, { body: String(m.text).slice(0, 300), tag: 'chatroom:' + m.room, lang: LANG });
      n.onclick = () => {
        window.focus();
        if (m.room !== ROOM) location.assign(roomUrl(m.room));
        n.close();
      };
    } catch (e) { /* e.g. Android Chrome needs a service worker; stay quiet */ }
  }

  // ---- sending ----
  function submitMessage() {
    const text = els.input.value;
    if (!text.trim()) return;
    const entry = { client_id: newClientId(), room: ROOM, text: text, ts: Date.now() / 1000 };
    outbox.add(entry);
    els.list.append(buildPending(entry));
    relayout();
    scrollToBottom();
    els.input.value = '';
    fitInput();
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
    fitInput();
    saveDraft();
    const now = Date.now();
    if (els.input.value && isReady() && now - lastTypingSent >= TYPING_SEND_MS) {
      lastTypingSent = now;
      sendFrame({ type: 'typing', room: ROOM });
    }
  });

  // The message box grows with its text, up to a limit set in chat.css (max-height).
  function fitInput() {
    els.input.style.height = 'auto';
    els.input.style.height = els.input.scrollHeight + 2 + 'px';
  }

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
    for (const timer of typers.values()) clearTimeout(timer);
    typers.clear();
    renderTyping();
  }

  function renderTyping() {
    if (!els.typing) return;
    const names = Array.from(typers.keys());
    let text = '';
    if (names.length === 1) text = t('typing_one', { user: names[0] });
    else if (names.length === 2) text = t('typing_two', { user: names[0], other: names[1] });
    else if (names.length > 2) text = t('typing_many');
    if (els.typing.textContent !== text) els.typing.textContent = text;
  }

  function renderOnline() {
    if (!els.online) return;
    const names = Array.from(onlineUsers).sort((a, b) => a.localeCompare(b, LANG, { sensitivity: 'base' }));
    els.online.replaceChildren(...names.map((name) => {
      const li = document.createElement('li');
      li.dataset.user = name;
      const avatar = document.createElement('span');
      avatar.className = 'avatar small ' + avatarHue(name);
      avatar.setAttribute('aria-hidden', 'true');
      avatar.textContent = (Array.from(name)[0] || '?').toUpperCase();
      if (name === ME) {
        li.className = 'me';
        li.append(avatar, name + ' ' + t('you'));
      } else {
        const a = document.createElement('a');
        a.href = roomUrl(dmRoom(ME, name));
        a.title = t('chat_with', { user: name });
        a.append(avatar, name);
        li.append(a);
      }
      return li;
    }));
  }

  // ---- rooms, unread badges, title ----
  function roomItems() {
    const items = [];
    for (const list of [els.roomList, els.dmList]) if (list) items.push(...list.children);
    return items;
  }

  function roomItem(name) {
    for (const li of roomItems()) if (li.dataset.room === name) return li;
    return null;
  }

  function ensureRoomItem(name) {
    const list = isDm(name) ? els.dmList || els.roomList : els.roomList;
    if (!list || roomItem(name)) return;
    const li = document.createElement('li');
    li.dataset.room = name;
    const a = document.createElement('a');
    a.href = roomUrl(name);
    const sigil = document.createElement('span');
    sigil.className = 'sigil';
    sigil.setAttribute('aria-hidden', 'true');
    sigil.textContent = isDm(name) ? '@' : '#';
    a.append(sigil, roomLabel(name));
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.hidden = true;
    li.append(a, ' ', badge);
    // Keep the list sorted by what it shows.
    const label = roomLabel(name);
    for (const other of list.children) {
      if (roomLabel(other.dataset.room || '').localeCompare(label) > 0) { other.before(li); return; }
    }
    list.append(li);
  }

  function renderBadges() {
    unread.set(ROOM, 0);
    let total = 0;
    for (const li of roomItems()) {
      const badge = li.querySelector('.badge');
      if (!badge || !li.dataset.room) continue;
      const n = unread.get(li.dataset.room) || 0;
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

  function updateTitle() {
    let total = unseen;
    for (const [room, n] of unread) if (room !== ROOM) total += n;
    const title = (total > 0 ? '(' + total + ') ' : '') + ROOM_LABEL + ' · chatroom';
    if (document.title !== title) document.title = title;
  }

  function refreshRooms() {
    if (navigator.onLine === false) return;
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
          if (r.name === ROOM) continue;
          unread.set(r.name, r.member ? Math.max(0, Number(r.unread) || 0) : 0);
          // A room this user joined since the socket's hello (a new direct message):
          // follow it from now on.
          if (r.member && !otherLast.has(r.name) && isReady()) {
            otherLast.set(r.name, Math.max(0, Number(r.last_id) || 0));
            sendFrame({ type: 'join', room: r.name, since: otherLast.get(r.name) });
          }
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
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'dismiss';
    close.setAttribute('aria-label', t('dismiss'));
    close.textContent = '×';
    close.addEventListener('click', () => p.remove());
    const span = document.createElement('span');
    span.textContent = message;
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
    // The page's own token first: over HTTPS the cookie is __Host-xsrf, and a stray _xsrf must not win.
    return (field ? field.value : '') || cookie('_xsrf');
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
      // Ask first, so that an existing name is not a failed request in the console.
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
          }).then((res) => res.json().catch(() => ({})).then((data) => ({ res: res, data: data })));
        })
        .then(({ res, data }) => {
          if (res.status === 201) {
            const created = data && data.room && typeof data.room.name === 'string' ? data.room.name : name;
            location.assign(roomUrl(created));
            return;
          }
          if (res.status === 401) { goToLogin(); return; }
          const err = data && data.error;
          let text = err && typeof err.code === 'string' ? errorText(err.code) : t('create_failed');
          if (res.status === 409) text = t('room_exists', { name: name });
          showError(text);
        })
        .catch(() => showError(t('unreachable')))
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

  // ---- the room list as a drawer on phones ----
  function setDrawer(open) {
    body.classList.add('drawer-used');
    body.classList.toggle('drawer-open', open);
    if (els.toggle) els.toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (els.backdrop) els.backdrop.hidden = !open;
    if (open) {
      const link = els.sidebar && els.sidebar.querySelector('a[aria-current="page"], a');
      if (link) link.focus();
    }
  }
  function drawerOpen() { return body.classList.contains('drawer-open'); }
  if (els.toggle) {
    els.toggle.hidden = false;
    els.toggle.addEventListener('click', () => setDrawer(!drawerOpen()));
  }
  if (els.backdrop) els.backdrop.addEventListener('click', () => setDrawer(false));

  // ---- keyboard shortcuts ----
  function isTextField(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function goToRoom(step, unreadOnly) {
    const items = roomItems().filter((li) => li.dataset.room);
    if (!items.length) return;
    let index = items.findIndex((li) => li.dataset.room === ROOM);
    for (let i = 0; i < items.length; i++) {
      index = (index + step + items.length) % items.length;
      const room = items[index].dataset.room;
      if (room === ROOM) return;
      if (!unreadOnly || (unread.get(room) || 0) > 0) { location.assign(roomUrl(room)); return; }
    }
  }

  document.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey) return;
    if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown')) {
      ev.preventDefault();
      goToRoom(ev.key === 'ArrowUp' ? -1 : 1, ev.shiftKey);
    } else if (ev.key === '/' && !ev.altKey && !isTextField(ev.target)) {
      ev.preventDefault();
      els.input.focus();
    } else if (ev.key === 'Escape') {
      if (drawerOpen()) {
        setDrawer(false);
        if (els.toggle) els.toggle.focus();
      } else if (ev.target === els.input || ev.target === els.list) {
        scrollToBottom();
        scheduleRead();
      }
    }
  });

  // ---- window events ----
  window.addEventListener('online', () => {
    if (ws) { if (gotHello) setState('connected'); return; }
    reconnectNow();
  });
  window.addEventListener('offline', () => {
    // The socket cannot work now; drop it at once instead of waiting for TCP to notice,
    // and keep what is typed in the outbox until the network is back.
    clearReconnect();
    if (ws) abandonSocket();
    setState('offline');
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') { markNextUnseen = true; return; }
    markNextUnseen = false;
    if (unseen) { unseen = 0; updateTitle(); }
    relayout(); // "Today" may have become "Yesterday"
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
  for (const time of els.list.querySelectorAll('time[data-ts]')) setTime(time, time.dataset.ts);
  relayout();
  const current = roomItem(ROOM);
  if (current) {
    current.classList.add('current');
    const link = current.querySelector('a');
    if (link) link.setAttribute('aria-current', 'page');
  }
  renderBadges();
  renderNotifyButton();
  fitInput();
  scrollToBottom();
  connect();
})();
