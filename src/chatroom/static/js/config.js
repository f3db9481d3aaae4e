/* What the server tells the client: its rules, as data- attributes of <body> (written
 * by chat.html from views/ui_methods.py client_settings, the one list of them), and the
 * page's elements. Nothing here repeats a server literal: a missing attribute is an
 * error, and the page then simply works without JavaScript. */

export const $ = (id) => document.getElementById(id);

function required(dataset, name) {
  const value = dataset[name];
  if (value === undefined || value === '') throw new Error('chat page without data-' + name);
  return value;
}

function seconds(dataset, name) {
  const value = Number(required(dataset, name));
  if (!Number.isFinite(value) || value <= 0) throw new Error('bad data-' + name);
  return value;
}

// The chat page's settings, or null on any other page.
export function readConfig(body) {
  const d = body.dataset;
  if (!d.user || !d.room) return null;
  const me = d.user;
  return Object.freeze({
    me: me, // the signed-in user's name as the server writes it
    userKey: required(d, 'userKey'), // its case-insensitive key (DM names use it)
    room: d.room,
    roomLabel: required(d, 'roomLabel'), // "bob" for dm:alice:bob
    lang: document.documentElement.lang || undefined,
    groupSeconds: seconds(d, 'groupSeconds'),
    avatarHues: seconds(d, 'avatarHues'),
    pingIntervalMs: seconds(d, 'pingInterval') * 1000,
    pongTimeoutMs: seconds(d, 'pingTimeout') * 1000,
    typingIntervalMs: seconds(d, 'typingInterval') * 1000,
    maxUploadBytes: seconds(d, 'maxUploadBytes'), // issue 15
  });
}

// The elements the client works with; null when the page lacks the essential ones.
export function findElements() {
  const els = {
    list: $('messages'),
    template: $('message-template'),
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
    logout: document.querySelector('form.logout'),
  };
  if (!els.list || !els.composer || !els.input || !els.template) return null;
  if (!els.alerts) {
    els.alerts = document.createElement('div');
    els.alerts.id = 'alerts';
    els.alerts.className = 'alerts';
    els.alerts.setAttribute('role', 'alert');
    els.composer.before(els.alerts);
  }
  return els;
}
