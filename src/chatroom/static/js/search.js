/* Search (SPEC §7): the box in the room header asks GET /api/search?q= (Enter, or a
 * pause in typing) and lists the results, newest first, with room, author, time and
 * the text, its matched terms in <mark>. Everything is built from DOM text nodes,
 * never innerHTML. A result is a link to its room with #msg-<id>: following it (click
 * or Enter) opens the room and scrollback.js loads and highlights the message.
 * Keys: Ctrl+K focuses the box, ↓/↑ move through the results, Esc closes them. */

import { $ } from './config.js';
import { errorText, setTime, t } from './i18n.js';
import { roomLabel, roomUrl, isDm } from './names.js';

const TYPING_PAUSE_MS = 350;
const MAX_CHARS = 200;

// `text` as nodes: text, with every case-insensitive occurrence of a term in <mark>.
export function highlighted(text, terms) {
  const lower = text.toLowerCase();
  const marks = [];
  // Lowercasing that changes the length (a few letters) would shift the offsets.
  if (lower.length === text.length) {
    for (const term of terms) {
      if (!term) continue;
      for (let at = lower.indexOf(term); at !== -1; at = lower.indexOf(term, at + term.length)) {
        marks.push([at, at + term.length]);
      }
    }
  }
  marks.sort((a, b) => a[0] - b[0]);
  const nodes = [];
  let pos = 0;
  for (const [start, end] of marks) {
    if (end <= pos) continue;
    const from = Math.max(start, pos);
    if (from > pos) nodes.push(document.createTextNode(text.slice(pos, from)));
    const mark = document.createElement('mark');
    mark.textContent = text.slice(from, end);
    nodes.push(mark);
    pos = end;
  }
  if (pos < text.length) nodes.push(document.createTextNode(text.slice(pos)));
  return nodes;
}

export function createSearch(app) {
  const { config } = app;
  const form = $('search');
  const input = $('search-input');
  const panel = $('search-panel');
  const status = $('search-status');
  const results = $('search-results');
  if (!form || !input || !panel || !status || !results) return null;
  const state = { timer: null, asked: '', serial: 0 };

  function close() {
    panel.hidden = true;
    input.setAttribute('aria-expanded', 'false');
  }

  function open() {
    panel.hidden = false;
    input.setAttribute('aria-expanded', 'true');
  }

  function resultItem(r, terms) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.className = 'result';
    a.href = roomUrl(String(r.room)) + '#msg-' + Number(r.id);
    const meta = document.createElement('span');
    meta.className = 'meta';
    const room = document.createElement('span');
    room.className = 'room';
    room.textContent = (isDm(String(r.room)) ? '@' : '#') + roomLabel(String(r.room), config.userKey);
    const author = document.createElement('span');
    author.className = 'author';
    author.textContent = String(r.user);
    const time = document.createElement('time');
    setTime(time, r.ts);
    // The date too: a result may be from any day.
    time.textContent = time.title || time.textContent;
    meta.append(room, ' · ', author, ' · ', time);
    const text = document.createElement('span');
    text.className = 'text';
    text.append(...highlighted(String(r.text), terms));
    a.append(meta, text);
    li.append(a);
    return li;
  }

  async function run() {
    clearTimeout(state.timer);
    const q = input.value.trim();
    if (!q) { close(); results.replaceChildren(); state.asked = ''; return; }
    if (Array.from(q).length > MAX_CHARS) return;
    if (q === state.asked && !panel.hidden) return;
    state.asked = q;
    const serial = ++state.serial;
    open();
    status.textContent = t('searching');
    panel.setAttribute('aria-busy', 'true');
    try {
      const response = await fetch('/api/search?q=' + encodeURIComponent(q), {
        credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      const body = await response.json().catch(() => ({}));
      if (serial !== state.serial) return; // a newer search is under way
      if (!response.ok) {
        results.replaceChildren();
        const code = body && body.error && typeof body.error.code === 'string' ? body.error.code : 'error';
        status.textContent = errorText(code);
        return;
      }
      const found = Array.isArray(body.results) ? body.results : [];
      const terms = Array.from(new Set(q.toLowerCase().split(/\s+/).filter(Boolean)));
      results.replaceChildren(...found.map((r) => resultItem(r, terms)));
      status.textContent = found.length ? t('search_results', { count: found.length + (body.more ? '+' : '') })
        : t('search_none');
    } catch (e) {
      if (serial === state.serial) { results.replaceChildren(); status.textContent = t('unreachable'); }
    } finally {
      if (serial === state.serial) panel.removeAttribute('aria-busy');
    }
  }

  function links() { return Array.from(results.querySelectorAll('a.result')); }

  function move(step) {
    const all = links();
    if (!all.length) return;
    const at = all.indexOf(document.activeElement);
    const next = at === -1 ? (step > 0 ? 0 : all.length - 1) : at + step;
    if (next < 0) { input.focus(); return; }
    all[Math.min(next, all.length - 1)].focus();
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); state.asked = ''; run(); });
  input.addEventListener('input', () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(run, TYPING_PAUSE_MS);
  });
  input.addEventListener('focus', () => { if (results.childElementCount) open(); });
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      if (panel.hidden) return;
      ev.preventDefault();
      move(ev.key === 'ArrowDown' ? 1 : -1);
    } else if (ev.key === 'Escape' && !panel.hidden) {
      ev.preventDefault(); // not main.js's "jump to the newest message"
      close();
      input.focus();
    }
  });
  // A result in this room: the address only changes its #hash; close the list.
  results.addEventListener('click', (ev) => { if (ev.target.closest('a.result')) close(); });
  document.addEventListener('click', (ev) => { if (!form.contains(ev.target)) close(); });
  document.addEventListener('keydown', (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (ev.key === 'k' || ev.key === 'K')) {
      ev.preventDefault();
      input.focus();
      input.select();
    }
  });

  return { run: run, close: close };
}
