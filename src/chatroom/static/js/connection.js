/* The WebSocket: connecting, the connection state shown at the top right, reconnecting
 * with backoff, keep-alive pings, and what a close by the server means. Frames go to
 * the `onFrame` callback; `onDropped` runs when a socket is gone. */

import { t } from './i18n.js';

const RECONNECT_BASE_MS = 500;
const RECONNECT_MAX_MS = 15000;
const CONNECT_TIMEOUT_MS = 15000;
const KEEPALIVE_TICK_MS = 5000;
// The server closes with 1008 on purpose: the session or account ended, or a policy
// was broken. Reconnecting would only be refused again.
const POLICY_VIOLATION = 1008;

// GET /api/rooms: the user's rooms, or 401 when the session has ended.
export function fetchRooms() {
  return fetch('/api/rooms', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
}

export function createConnection({ config, els, onFrame, onDropped }) {
  const s = {
    ws: null,
    gotHello: false,
    ready: false, // `joined` for the current room received on this socket
    attempt: 0,
    reconnectTimer: null,
    countdownTimer: null,
    reconnectAt: 0,
    connectStartedAt: 0,
    lastSent: 0,
    awaitingPong: false,
    pingSentAt: 0,
    stopped: false, // leaving the page, or closed for good by the server
  };
  // The server-rendered state line ("Reload the page to see new messages").
  const staticText = els.state ? els.state.textContent : '';

  function setState(state, seconds) {
    const text = t('state_' + state, { seconds: seconds });
    if (!els.state) return;
    if (els.state.dataset.state !== state) els.state.dataset.state = state;
    if (els.state.textContent !== text) els.state.textContent = text;
  }

  function isOpen() { return s.ws !== null && s.ws.readyState === WebSocket.OPEN; }
  function isReady() { return isOpen() && s.ready; }

  function send(frame) {
    if (!isOpen()) return false;
    s.ws.send(JSON.stringify(frame));
    s.lastSent = Date.now();
    return true;
  }

  function clearReconnect() {
    clearTimeout(s.reconnectTimer);
    clearInterval(s.countdownTimer);
    s.reconnectTimer = null;
    s.countdownTimer = null;
  }

  function connect() {
    clearReconnect();
    if (s.ws || s.stopped) return;
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
    s.ws = sock;
    s.gotHello = false;
    s.ready = false;
    s.awaitingPong = false;
    s.connectStartedAt = Date.now();
    sock.onmessage = (ev) => {
      if (s.ws !== sock) return;
      s.awaitingPong = false;
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (!frame || typeof frame !== 'object') return;
      if (frame.type === 'hello') {
        s.gotHello = true;
        s.attempt = 0;
        setState(navigator.onLine === false ? 'offline' : 'connected');
      }
      onFrame(frame);
    };
    sock.onclose = (ev) => { if (s.ws === sock) dropped(ev.code); };
    sock.onerror = () => { /* onclose follows */ };
  }

  function dropped(code) {
    const hadHello = s.gotHello;
    s.ws = null;
    s.gotHello = false;
    s.ready = false;
    s.awaitingPong = false;
    onDropped();
    if (s.stopped) return;
    if (code === POLICY_VIOLATION) { closedByServer(); return; }
    if (!hadHello && navigator.onLine !== false) checkSignedIn();
    scheduleReconnect();
  }

  // Closed on purpose (e.g. logged out elsewhere): no reconnect loop. A session that
  // ended goes to the login page; otherwise the state line asks for a reload, in the
  // words the page has without JavaScript.
  function closedByServer() {
    s.stopped = true;
    clearReconnect();
    if (els.state) {
      els.state.dataset.state = 'closed';
      els.state.textContent = staticText;
    }
    checkSignedIn();
  }

  // Give up on a socket that stopped answering (e.g. after sleep) without waiting for TCP.
  function abandon() {
    const sock = s.ws;
    if (!sock) return;
    sock.onmessage = sock.onclose = sock.onerror = null;
    try { sock.close(); } catch (e) { /* already closed */ }
    dropped();
  }

  function scheduleReconnect() {
    clearReconnect();
    if (s.stopped) return;
    if (navigator.onLine === false) { setState('offline'); return; }
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * Math.pow(2, s.attempt));
    s.attempt = Math.min(s.attempt + 1, 10);
    const delay = base / 2 + Math.random() * (base / 2);
    s.reconnectAt = Date.now() + delay;
    s.reconnectTimer = setTimeout(connect, delay);
    const tick = () => setState('reconnecting', Math.max(1, Math.ceil((s.reconnectAt - Date.now()) / 1000)));
    tick();
    s.countdownTimer = setInterval(tick, 250);
  }

  function reconnectNow() {
    if (s.ws || s.stopped) return;
    s.attempt = 0;
    connect();
  }

  // The socket answers 401 before the upgrade, which a browser cannot see: ask the API.
  function checkSignedIn() {
    fetchRooms().then((res) => { if (res.status === 401) toLogin(); }).catch(() => { /* server unreachable */ });
  }

  function toLogin() {
    s.stopped = true;
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
  }

  // Keep-alive: ping when idle as often as the server pings, and drop a socket whose
  // pong does not come within the server's ping timeout.
  setInterval(() => {
    const now = Date.now();
    const ws = s.ws;
    if (!ws || s.stopped) return;
    if (ws.readyState === WebSocket.CONNECTING || !s.gotHello) {
      if (now - s.connectStartedAt > CONNECT_TIMEOUT_MS) abandon();
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    if (s.awaitingPong) {
      if (now - s.pingSentAt > config.pongTimeoutMs) abandon();
    } else if (now - s.lastSent >= config.pingIntervalMs) {
      send({ type: 'ping' });
      s.awaitingPong = true;
      s.pingSentAt = now;
    }
  }, KEEPALIVE_TICK_MS);

  return {
    connect: connect,
    send: send,
    isOpen: isOpen,
    isReady: isReady,
    // The current room is joined on this socket: sends and read markers may go.
    setReady() { s.ready = true; },
    reconnectNow: reconnectNow,
    toLogin: toLogin,
    // Leaving the page (logout, navigation): no more reconnects.
    stop() { s.stopped = true; },
    online() {
      if (s.stopped) return;
      if (s.ws) { if (s.gotHello) setState('connected'); return; }
      reconnectNow();
    },
    // The socket cannot work now; drop it at once instead of waiting for TCP to notice.
    offline() {
      if (s.stopped) return;
      clearReconnect();
      if (s.ws) abandon();
      setState('offline');
    },
    // The tab is visible again: a reconnect waiting for its timer goes now. True if so.
    wake() {
      if (s.ws || s.reconnectTimer === null) return false;
      reconnectNow();
      return true;
    },
    pageHide() {
      s.stopped = true;
      clearReconnect();
      const sock = s.ws;
      if (!sock) return;
      sock.onmessage = sock.onclose = sock.onerror = null;
      try { sock.close(1000); } catch (e) { /* closed */ }
      dropped();
    },
    pageShow() { s.stopped = false; reconnectNow(); },
  };
}
