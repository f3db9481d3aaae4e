/* Issue 13: the room settings panel for the room's staff (owners, moderators, site admins
 * where they moderate): topic, read-only, members with roles (owners set them and hand
 * the room over), add a member with username suggestions (GET /api/users), kick, ban and
 * mute for a chosen time, lift bans and mutes, delete the room, and the room's audit log.
 * Every change is one call of the SPEC §6 API; the lists are read again after it. Esc
 * closes the panel and gives the focus back to its button. */

import { fullDate, t } from './i18n.js';
import { api } from './room_status.js';

const $ = (id) => document.getElementById(id);
const ROLES = ['member', 'moderator', 'owner'];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('aria-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const when = (iso) => fullDate(Date.parse(iso) / 1000);

export function createRoomSettings(app) {
  const toggle = $('room-settings-toggle');
  const panel = $('room-settings');
  if (!toggle || !panel) return { close() {} };
  const { config } = app;
  const base = '/api/rooms/' + encodeURIComponent(config.room);
  const els = {
    status: $('rs-status'), topicForm: $('rs-topic-form'), topic: $('rs-topic'), readOnly: $('rs-read-only'),
    addForm: $('rs-add-form'), addUser: $('rs-add-user'), options: $('rs-user-options'), duration: $('rs-duration'),
    members: $('rs-members'), bans: $('rs-bans'), audit: $('rs-audit'), danger: $('rs-danger'),
    del: $('rs-delete'), delConfirm: $('rs-delete-confirm'), delYes: $('rs-delete-yes'), delNo: $('rs-delete-no'),
  };
  const state = { level: null };

  const say = (text) => { els.status.textContent = text; };
  const failed = (data) => say(t('rs_failed', { reason: (data && data.error && data.error.message) || '?' }));

  app.roomStatus.listen((room) => {
    state.level = room ? app.roomStatus.level() : null;
    toggle.hidden = !state.level;
    if (!state.level && !panel.hidden) close(false);
    if (room && panel.hidden) {
      els.topic.value = room.topic || '';
      els.readOnly.checked = room.read_only === true;
    }
  });

  function open() {
    panel.hidden = false;
    toggle.setAttribute('aria-expanded', 'true');
    document.body.classList.add('settings-open');
    els.danger.hidden = state.level !== 'owner';
    say('');
    refresh();
    $('rs-close').focus();
  }
  function close(focus) {
    panel.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    document.body.classList.remove('settings-open');
    els.delConfirm.hidden = true;
    els.del.hidden = false;
    if (focus !== false && !toggle.hidden) toggle.focus();
  }
  toggle.addEventListener('click', () => (panel.hidden ? open() : close()));
  $('rs-close').addEventListener('click', () => close());
  // Esc anywhere closes the open panel (also when what had the focus was just redrawn).
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || panel.hidden || ev.defaultPrevented) return;
    ev.preventDefault();
    close();
  });

  function seconds() {
    const v = els.duration.value;
    return v ? Number(v) : undefined;
  }

  // One change: the call, the answer said, the lists read again.
  function change(method, path, body, done) {
    return api(method, path, body).then(({ status, data }) => {
      if (status >= 400) { failed(data); return; }
      if (done) say(done);
      refresh();
    }).catch(() => say(t('unreachable')));
  }

  function memberRow(m) {
    const li = el('li', { dataset: { user: m.name } });
    li.append(el('span', { className: 'rs-name' }, m.name));
    if (state.level === 'owner' && m.name !== config.me) {
      const select = el('select', { 'aria-label': t('rs_role_of', { user: m.name }) });
      for (const role of ROLES) select.append(el('option', { value: role, selected: role === m.role }, t('rs_role_' + role)));
      select.addEventListener('change', () => change('PUT', base + '/members/' + encodeURIComponent(m.name), { role: select.value }, t('rs_saved')));
      li.append(' ', select);
    } else {
      li.append(' ', el('span', { className: 'rs-role' }, t('rs_role_' + (ROLES.includes(m.role) ? m.role : 'member'))));
    }
    if (m.muted) li.append(' ', el('span', { className: 'rs-muted' }, m.muted_until ? t('rs_muted_until', { time: when(m.muted_until) }) : t('rs_muted')));
    const mayAct = m.name !== config.me && !(state.level === 'moderator' && m.role === 'owner');
    if (mayAct) {
      const user = encodeURIComponent(m.name);
      const act = (label, fn) => {
        const b = el('button', { type: 'button', className: 'quiet', 'aria-label': t('rs_action_on', { action: label, user: m.name }) }, label);
        b.addEventListener('click', fn);
        return b;
      };
      const buttons = el('span', { className: 'rs-actions' });
      if (m.muted) buttons.append(act(t('rs_unmute'), () => change('DELETE', base + '/mutes/' + user, undefined, t('rs_done', { action: t('rs_unmute'), user: m.name }))));
      else buttons.append(act(t('rs_mute'), () => change('POST', base + '/mutes', { user: m.name, seconds: seconds() }, t('rs_done', { action: t('rs_mute'), user: m.name }))));
      buttons.append(
        act(t('rs_kick'), () => change('DELETE', base + '/members/' + user, undefined, t('rs_done', { action: t('rs_kick'), user: m.name }))),
        act(t('rs_ban'), () => change('POST', base + '/bans', { user: m.name, seconds: seconds() }, t('rs_done', { action: t('rs_ban'), user: m.name }))),
      );
      li.append(' ', buttons);
    }
    return li;
  }

  function banRow(b) {
    const li = el('li', { dataset: { user: b.name } }, el('span', { className: 'rs-name' }, b.name), ' ',
      el('span', {}, b.until ? t('rs_banned_until', { time: when(b.until) }) : t('rs_banned_forever')), ' ',
      el('span', { className: 'rs-by' }, t('rs_by', { user: b.by || '?' })), ' ');
    const lift = el('button', { type: 'button', className: 'quiet', 'aria-label': t('rs_action_on', { action: t('rs_lift'), user: b.name }) }, t('rs_lift'));
    lift.addEventListener('click', () => change('DELETE', base + '/bans/' + encodeURIComponent(b.name), undefined, t('rs_done', { action: t('rs_lift'), user: b.name })));
    li.append(lift);
    return li;
  }

  function auditRow(e) {
    const action = t('rs_audit_' + e.action);
    const text = t('rs_audit_entry', { actor: e.actor || '', action: action.startsWith('rs_audit_') ? e.action : action, target: e.target || '', detail: e.detail || '' });
    const time = el('time', { dateTime: e.created || '' }, e.created ? when(e.created) : '');
    return el('li', { dataset: { action: e.action || '' } }, time, ' ', text.trim());
  }

  // Redraw a list; a control focused in it keeps its place (the same user's row, the
  // same position: Mute becomes Unmute), so the keyboard (and Esc) keep working.
  const FOCUSABLE = 'button, select';
  function fill(list, items, row) {
    const active = document.activeElement;
    const had = active && list.contains(active) ? active.closest('li') : null;
    const index = had ? Array.from(had.querySelectorAll(FOCUSABLE)).indexOf(active) : -1;
    list.replaceChildren(...(items.length ? items.map(row) : [el('li', { className: 'rs-empty' }, t('rs_none'))]));
    if (!had) return;
    const again = Array.from(list.children).find((li) => li.dataset.user === had.dataset.user);
    const controls = again ? Array.from(again.querySelectorAll(FOCUSABLE)) : [];
    (controls[index] || controls[0] || $('rs-close')).focus();
  }

  function refresh() {
    if (panel.hidden) return;
    const get = (path) => api('GET', base + path).then(({ status, data }) => (status === 200 ? data : null));
    get('/members').then((d) => d && fill(els.members, d.members || [], memberRow));
    get('/bans').then((d) => d && fill(els.bans, d.bans || [], banRow));
    get('/audit').then((d) => d && fill(els.audit, d.entries || [], auditRow));
  }

  els.topicForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    change('PATCH', base, { topic: els.topic.value }, t('rs_saved')).then(() => {
      const topic = document.querySelector('.room-header .topic');
      if (topic) topic.textContent = els.topic.value;
    });
  });
  els.readOnly.addEventListener('change', () => change('PATCH', base, { read_only: els.readOnly.checked }, t('rs_saved')));

  els.addForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const user = els.addUser.value.trim();
    if (!user) return;
    change('POST', base + '/members', { user: user }, t('rs_added', { user: user })).then(() => { els.addUser.value = ''; });
  });
  // Suggestions as one types: a <datalist> the browser shows (keyboard included).
  let asked = '';
  els.addUser.addEventListener('input', () => {
    const prefix = els.addUser.value.trim();
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(prefix) || prefix === asked) return;
    asked = prefix;
    api('GET', '/api/users?prefix=' + encodeURIComponent(prefix)).then(({ status, data }) => {
      if (status !== 200 || asked !== prefix) return;
      els.options.replaceChildren(...(data.users || []).map((name) => el('option', { value: name })));
    }).catch(() => {});
  });

  els.del.addEventListener('click', () => { els.del.hidden = true; els.delConfirm.hidden = false; els.delNo.focus(); });
  els.delNo.addEventListener('click', () => { els.delConfirm.hidden = true; els.del.hidden = false; els.del.focus(); });
  els.delYes.addEventListener('click', () => {
    api('DELETE', base).then(({ status, data }) => { if (status >= 400) failed(data); })
      .catch(() => say(t('unreachable')));
    // The `removed` frame (reason `deleted`) then tells this page too.
  });

  return { close: close, refresh: refresh };
}
