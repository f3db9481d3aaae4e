/* The site admin page (SPEC §6, templates/admin.html): the users, with Disable/Enable
 * and Make admin/Remove admin, and the invites, with Create (its link shown once) and
 * Revoke, over the JSON API (GET/PATCH /api/admin/users, GET/POST/DELETE /api/invites).
 * Every control is a real button or form field, so the page works from the keyboard;
 * user data goes in with textContent only. */

import { sendJson } from './forms.js';
import { errorText, setTime, t } from './i18n.js';

document.documentElement.classList.add('js');

const $ = (id) => document.getElementById(id);

// The answer's JSON, or an Error with the error `code`.
function request(method, path, body) {
  return sendJson(method, path, body).then(({ res, data }) => {
    if (res.ok) return data;
    const code = data && data.error && typeof data.error.code === 'string' ? data.error.code : 'error';
    throw Object.assign(new Error(code), { code: code });
  });
}

function say(text, isError) {
  const box = $('alerts');
  const p = document.createElement('p');
  p.className = isError ? 'alert error' : 'alert';
  p.textContent = text;
  box.replaceChildren(p);
}

function failed(err) {
  say(err && err.code ? errorText(err.code) : t('unreachable'), true);
}

// The column headings, for the phone layout's "Name: alice" cells.
function labels(table) {
  return Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent.trim());
}

function cell(text, label, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (label) td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function actionButton(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

function time(iso, label) {
  const td = cell('', label);
  const el = document.createElement('time');
  setTime(el, Date.parse(iso) / 1000);
  el.textContent = el.title; // the full local date: expiry is not a time of day
  td.append(el);
  return td;
}

function createUsers(me) {
  const table = $('users');
  const heads = labels(table);

  function row(u) {
    const tr = document.createElement('tr');
    tr.dataset.user = u.name;
    const self = u.name.toLowerCase() === me.toLowerCase();
    tr.append(
      cell(u.name + (self ? ' ' + t('you') : ''), heads[0]),
      cell(t(u.role === 'admin' ? 'admin' : 'user'), heads[1]),
      cell(t(u.disabled ? 'disabled' : 'active'), heads[2], u.disabled ? 'state-disabled' : ''),
      cell(String(u.sessions), heads[3]),
    );
    const actions = cell('', heads[4], 'actions');
    if (!self) { // one's own account is changed by another admin or the operator
      const on = !u.disabled;
      const buttons = document.createElement('div');
      buttons.className = 'buttons';
      actions.append(buttons);
      buttons.append(actionButton(t(on ? 'disable_short' : 'enable_short'), t(on ? 'disable' : 'enable', { user: u.name }),
        () => change(u.name, { disabled: on }, on ? 'done_disable' : 'done_enable')));
      const admin = u.role === 'admin';
      buttons.append(actionButton(t(admin ? 'demote_short' : 'promote_short'), t(admin ? 'demote' : 'promote', { user: u.name }),
        () => change(u.name, { role: admin ? 'user' : 'admin' }, admin ? 'done_demote' : 'done_promote')));
    }
    tr.append(actions);
    return tr;
  }

  function render(users) {
    table.tBodies[0].replaceChildren(...users.map(row));
  }

  function load() {
    return request('GET', '/api/admin/users').then((data) => render(data.users || [])).catch(failed);
  }

  function change(name, body, done) {
    return request('PATCH', '/api/admin/users/' + encodeURIComponent(name), body).then((data) => {
      const old = table.querySelector('tr[data-user="' + CSS.escape(name) + '"]');
      const fresh = row(data.user);
      if (old) old.replaceWith(fresh);
      say(t(done, { user: data.user.name }));
      // Keep the focus on the row's first button: its label changed.
      const next = fresh.querySelector('button');
      if (next) next.focus();
    }).catch(failed);
  }

  return { load: load };
}

function createInvites() {
  const table = $('invites');
  const heads = labels(table);
  const form = $('invite-form');
  const shown = $('new-invite');
  const url = $('new-invite-url');

  function row(i) {
    const tr = document.createElement('tr');
    tr.dataset.invite = String(i.id);
    tr.append(
      cell(i.prefix + '…', heads[0]),
      cell(i.created_by, heads[1]),
      cell(t('invite_uses', { used: i.used, uses: i.uses }), heads[2]),
      time(i.expires, heads[3]),
      cell(t('invite_' + i.state), heads[4], 'state-' + i.state),
    );
    const actions = cell('', heads[5], 'actions');
    if (i.state === 'active') {
      const buttons = document.createElement('div');
      buttons.className = 'buttons';
      buttons.append(actionButton(t('revoke'), t('revoke_label', { prefix: i.prefix }), () => revoke(i)));
      actions.append(buttons);
    }
    tr.append(actions);
    return tr;
  }

  function render(invites) {
    if (!invites.length) {
      const td = cell(t('invite_none'));
      td.colSpan = heads.length;
      const tr = document.createElement('tr');
      tr.append(td);
      table.tBodies[0].replaceChildren(tr);
      return;
    }
    table.tBodies[0].replaceChildren(...invites.map(row));
  }

  function load() {
    return request('GET', '/api/invites').then((data) => render(data.invites || [])).catch(failed);
  }

  function revoke(i) {
    return request('DELETE', '/api/invites/' + i.id).then(() => load()).then(() => {
      say(t('done_revoke', { prefix: i.prefix }));
      form.querySelector('button[type="submit"]').focus();
    }).catch(failed);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const uses = Number($('invite-uses').value);
    const seconds = Number($('invite-seconds').value);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    request('POST', '/api/invites', { uses: uses, seconds: seconds }).then((made) => {
      url.value = made.url;
      shown.hidden = false;
      url.focus();
      url.select();
      return load();
    }).catch(failed).finally(() => { button.disabled = false; });
  });

  $('copy-invite').addEventListener('click', () => {
    url.select();
    const done = () => say(t('copied'));
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(url.value).then(done, () => {});
    else if (document.execCommand('copy')) done();
  });

  return { load: load };
}

function start() {
  const main = $('main');
  if (!main || !$('users') || !$('invites')) return;
  createUsers(main.dataset.me || '').load();
  createInvites().load();
}

start();
