/* Telling the user: alerts next to the message box, new messages read out by screen
 * readers (a polite live region), and opt-in desktop notifications. */

import { t } from './i18n.js';
import { isDm, roomUrl } from './names.js';
import { store } from './store.js';

const ALERT_MS = 10000;
const KEEP = 3; // alerts and announcements kept at once
const PREVIEW_CHARS = 300;

export function createNotices(app) {
  const { config, els, keys } = app;
  const canNotify = typeof window.Notification === 'function';
  // SPEC §6: nothing of a blocked user is read out or notified.
  const blocked = (m) => Boolean(app.blocking && app.blocking.isBlocked(m.user));

  function alert(code, message) {
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
    while (els.alerts.children.length > KEEP) els.alerts.firstElementChild.remove();
    setTimeout(() => p.remove(), ALERT_MS);
  }

  // A new message from someone else in this room, for screen readers.
  function announce(m) {
    if (!els.announcer || blocked(m)) return;
    const p = document.createElement('p');
    p.textContent = t('announce', { user: m.user, text: String(m.text).slice(0, PREVIEW_CHARS) });
    els.announcer.append(p);
    while (els.announcer.children.length > KEEP) els.announcer.firstElementChild.remove();
  }

  function notificationsOn() {
    return canNotify && Notification.permission === 'granted' && store.get(keys.notify, true) !== false;
  }

  function renderButton() {
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
        store.set(keys.notify, !notificationsOn());
        renderButton();
        return;
      }
      if (Notification.permission !== 'default') return;
      const done = () => { store.set(keys.notify, true); renderButton(); };
      const asked = Notification.requestPermission();
      if (asked && typeof asked.then === 'function') asked.then(done, done);
    });
  }

  // A message from someone else in another room, or in this one while the tab is hidden.
  function notify(m) {
    if (!notificationsOn() || m.user === config.me || blocked(m)) return;
    if (m.room === config.room && document.visibilityState === 'visible') return;
    // issue 12: a mention says so (DMs already do).
    const mentioned = Array.isArray(m.mentions) && m.mentions.includes(config.me);
    const title = isDm(m.room) ? t('notify_dm', { user: m.user })
      : mentioned ? t('notify_mention', { user: m.user, room: m.room })
        : t('notify_room', { user: m.user, room: m.room });
    try {
      const n = new Notification(title, { body: String(m.text).slice(0, PREVIEW_CHARS), tag: 'chatroom:' + m.room, lang: config.lang });
      n.onclick = () => {
        window.focus();
        if (m.room !== config.room) location.assign(roomUrl(m.room));
        n.close();
      };
    } catch (e) { /* e.g. Android Chrome needs a service worker; stay quiet */ }
  }

  return { alert: alert, announce: announce, notify: notify, renderButton: renderButton };
}
