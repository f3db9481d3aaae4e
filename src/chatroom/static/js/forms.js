/* The sidebar's "New room" form over the JSON API (an existing name is said, not
 * failed), and the logout form, which forgets this user's drafts and queued messages
 * on this device. Without JavaScript both are plain form posts. `sendJson` is the one
 * way the pages call the JSON API with the session cookie (and its XSRF header). */

import { fetchRooms } from './connection.js';
import { errorText, t } from './i18n.js';
import { roomUrl } from './names.js';
import { forgetUser } from './store.js';

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

export function xsrfToken() {
  const field = document.querySelector('input[name="_xsrf"]');
  // The page's own token first: over HTTPS the cookie is __Host-xsrf, and a stray _xsrf must not win.
  return (field ? field.value : '') || cookie('_xsrf');
}

// A JSON API call with the session cookie and the XSRF header: {res, data} (data is
// {} when the answer is not JSON). Used here and by blocking.js and admin.js.
export function sendJson(method, path, body) {
  return fetch(path, {
    method: method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-XSRFToken': xsrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((res) => res.json().catch(() => ({})).then((data) => ({ res: res, data: data })));
}

// POST /api/rooms, unless the name exists already (asked first, so that it is not a
// failed request in the console): {res, data}.
function createRoom(name, isPrivate) {
  return fetchRooms()
    .then((res) => (res.ok ? res.json() : null))
    .catch(() => null)
    .then((data) => {
      const rooms = data && Array.isArray(data.rooms) ? data.rooms : [];
      if (rooms.some((r) => r && r.name === name)) return { res: { status: 409 }, data: null };
      return sendJson('POST', '/api/rooms', { name: name, private: isPrivate });
    });
}

export function setUpForms({ els, conn, keys }) {
  const form = els.createForm;
  if (form) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = form.querySelector('input[name="name"]');
      const button = form.querySelector('button[type="submit"]');
      const name = input ? input.value.trim() : '';
      if (!name) return;
      const showError = (text) => {
        if (!els.createError) return;
        els.createError.textContent = text;
        els.createError.hidden = !text;
      };
      showError('');
      if (button) button.disabled = true;
      const priv = form.querySelector('input[name="private"]'); // issue 13
      createRoom(name, Boolean(priv && priv.checked))
        .then(({ res, data }) => {
          if (res.status === 201) {
            const created = data && data.room && typeof data.room.name === 'string' ? data.room.name : name;
            location.assign(roomUrl(created));
            return;
          }
          if (res.status === 401) { conn.toLogin(); return; }
          const err = data && data.error;
          let text = err && typeof err.code === 'string' ? errorText(err.code) : t('create_failed');
          if (res.status === 409) text = t('room_exists', { name: name });
          showError(text);
        })
        .catch(() => showError(t('unreachable')))
        .finally(() => { if (button) button.disabled = false; });
    });
  }

  if (els.logout) {
    els.logout.addEventListener('submit', () => {
      conn.stop();
      forgetUser(keys);
    });
  }
}
