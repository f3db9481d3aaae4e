/* chatroom browser client: the WebSocket protocol of SPEC §3, no framework, no build
 * step; ES modules served as they are from static/js/. This module starts the others,
 * routes the server's frames to them, and handles keyboard and window events.
 *
 *   config.js      server rules (data- attributes of <body>) and the page's elements
 *   i18n.js        translated strings (the #i18n JSON block), dates and times
 *   names.js       room names, links, avatar colours
 *   store.js       localStorage: drafts, the outbox, the notification choice
 *   connection.js  the socket: state line, reconnect with backoff, keep-alive, 1008
 *   room.js        the current room: join, its messages, "new messages", read markers
 *   messages.js    the message list's DOM, built from <template id="message-template">
 *   timeline.js    day separators and author grouping
 *   sender.js      sending the outbox in order, acks, rate limits, Retry/Discard
 *   composer.js    the message box: Enter, drafts, typing
 *   people.js      the online list and typing notices
 *   sidebar.js     rooms, unread counts, title, phone drawer
 *   notices.js     alerts, screen-reader announcements, desktop notifications
 *   forms.js       the New room and Log out forms
 *   uploads.js     files: attach, drop, paste, upload progress, thumbnails and chips
 *   scrollback.js  older pages when scrolling up, jumping to a message (#msg-<id>)
 *   search.js      the search box and its results
 *   markup.js      safe rendering of message text: links, code, *bold*, ... as DOM nodes
 *   actions.js     the message toolbar: reply, react, edit, delete (issue 12)
 *   editing.js     inline edit; Up-arrow edits one's last message
 *   reply.js       the reply preview above the box, quoted parents
 *   reactions.js   reaction chips
 *   emoji.js       the emoji picker with its recently used row
 *   blocking.js    hiding blocked users' messages, Block / Unblock (SPEC §6)
 *   room_status.js what moderation left this user here: locks, staff level, removed, refusals
 *   room_settings.js the room settings panel for the room's staff (issue 13)
 *
 * The page works without this script (server-rendered history, a plain form POST to
 * send); with it, the form is intercepted and everything is live. User data is only
 * ever written with textContent, never innerHTML. Each module keeps its own state in
 * one object; `app` below is how they reach each other. */

import { findElements, readConfig } from './config.js';
import { createConnection } from './connection.js';
import { createActions } from './actions.js';
import { createBlocking } from './blocking.js';
import { createComposer } from './composer.js';
import { createEditing } from './editing.js';
import { createEmojiPicker } from './emoji.js';
import { setUpForms } from './forms.js';
import { errorText } from './i18n.js';
import { createMessageList } from './messages.js';
import { createNotices } from './notices.js';
import { createPeople } from './people.js';
import { createReply } from './reply.js';
import { createRoomSettings } from './room_settings.js';
import { createRoomStatus } from './room_status.js';
import { createRoom } from './room.js';
import { createScrollback } from './scrollback.js';
import { createSearch } from './search.js';
import { createSender } from './sender.js';
import { createSidebar } from './sidebar.js';
import { createOutbox, userKeys } from './store.js';
import { localizeTimes } from './timeline.js';
import { createUploads } from './uploads.js';

document.documentElement.classList.add('js');

function onFrame(app, f) {
  const here = f.room === app.config.room;
  switch (f.type) {
    case 'hello':
      app.room.onHello(f);
      app.sidebar.onHello(f);
      app.room.join();
      app.sidebar.followAll();
      app.roomStatus.onHello(f); // issue 13
      break;
    case 'joined':
      if (here) app.room.onJoined(f);
      else app.sidebar.onJoined(f);
      break;
    case 'message':
      if (!Number.isInteger(f.id) || typeof f.room !== 'string') break;
      if (here) app.room.onMessage(f);
      else app.sidebar.onMessage(f);
      break;
    case 'edited': case 'deleted': case 'reaction': case 'updated': // issue 12
      if (here) app.room.onChange(f);
      break;
    case 'removed': app.roomStatus.onRemoved(f); break; // issue 13
    case 'added': app.sidebar.onAdded(f); app.roomStatus.onAdded(f); break; // issue 13
    case 'ack': app.sender.onAck(f); break;
    case 'presence': app.people.onPresence(f); break;
    case 'typing': app.people.onTyping(f); break;
    case 'error': onError(app, f); break;
    default: break; // pong and anything new
  }
}

function onError(app, f) {
  const code = typeof f.code === 'string' ? f.code : 'error';
  const cid = typeof f.client_id === 'string' ? f.client_id : null;
  // The client sends only in the page's room, always with a client_id: an error about
  // another room without one answers the join that follows that room in the background.
  if (cid === null && typeof f.room === 'string' && f.room !== app.config.room && app.sidebar.follows(f.room)) {
    if (code === 'rate_limited') app.sidebar.followLater(f.room, f.retry_after);
    return; // otherwise (deleted, or storage down) stay quiet
  }
  if (code === 'forbidden' && app.roomStatus.onRefused(f, cid)) return; // issue 13: muted, read-only
  if (app.sender.onError(code, cid, f)) return;
  if (f.room === app.config.room) app.room.onJoinError(code);
  app.notices.alert(code, errorText(code));
}

function isTextField(el) {
  return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

function listenToKeys(app) {
  const { els, sidebar } = app;
  document.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey) return;
    if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown')) {
      ev.preventDefault();
      sidebar.goToRoom(ev.key === 'ArrowUp' ? -1 : 1, ev.shiftKey);
    } else if (ev.key === '/' && !ev.altKey && !isTextField(ev.target)) {
      ev.preventDefault();
      els.input.focus();
    } else if (ev.key === 'Escape') {
      if (sidebar.drawerOpen()) {
        sidebar.closeDrawer();
        if (els.toggle) els.toggle.focus();
      } else if (ev.target === els.input || ev.target === els.list) {
        app.list.scrollToBottom();
        app.room.scheduleRead();
      }
    }
  });
}

function listenToWindow(app) {
  const { conn, room } = app;
  window.addEventListener('online', () => conn.online());
  // Keep what is typed in the outbox until the network is back.
  window.addEventListener('offline', () => conn.offline());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') { room.hidden(); return; }
    room.visible();
    if (!conn.wake() && conn.isReady()) app.sidebar.refresh();
  });
  window.addEventListener('focus', () => room.scheduleRead());
  window.addEventListener('pagehide', () => {
    room.flushRead();
    conn.pageHide();
  });
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) conn.pageShow(); });
}

function start() {
  const config = readConfig(document.body);
  if (!config) return; // not the chat page
  const els = findElements();
  if (!els) return;
  const keys = userKeys(config.userKey);
  const app = { config: config, els: els, keys: keys, outbox: createOutbox(keys.outbox) };
  app.conn = createConnection({
    config: config,
    els: els,
    onFrame: (f) => onFrame(app, f),
    onDropped: () => { app.sender.dropped(); app.people.clearTypers(); },
  });
  app.list = createMessageList(app);
  app.notices = createNotices(app);
  app.people = createPeople(app);
  app.room = createRoom(app);
  app.sidebar = createSidebar(app);
  app.sender = createSender(app);
  app.uploads = createUploads(app); // issue 15
  app.scrollback = createScrollback(app); // issue 14
  app.search = createSearch(app); // issue 14
  app.emoji = createEmojiPicker(app); // issue 12
  app.blocking = createBlocking(app); // issue 13
  app.actions = createActions(app);
  app.editing = createEditing(app);
  app.reply = createReply(app);
  app.roomStatus = createRoomStatus(app); // issue 13
  app.roomSettings = createRoomSettings(app);
  const composer = createComposer(app);
  setUpForms(app);
  listenToKeys(app);
  listenToWindow(app);

  localizeTimes(els.list);
  app.list.relayout();
  app.sidebar.markCurrent();
  app.sidebar.renderBadges();
  app.notices.renderButton();
  composer.fit();
  app.list.scrollToBottom();
  app.conn.connect();
}

start();
