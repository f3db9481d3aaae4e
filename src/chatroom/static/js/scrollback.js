/* Older messages (SPEC §7): scrolling to the top of the list loads the page before the
 * oldest shown (GET /api/rooms/<r>/messages?before=&limit=), with a spinner, keeping
 * the scroll position, until the server says there is no more. "Jump to a message"
 * (#msg-<id> in the address, from a search result) loads the page around it, scrolls
 * to it and highlights it; when that page does not reach the messages below it, a
 * "Show newer messages" line loads the rest. Items are built by messages.js from the
 * shared <template>, text with textContent only. `app` holds the other parts. */

import { t } from './i18n.js';
import { roomUrl } from './names.js';

const PAGE = 50;
const NEAR_TOP_PX = 150;
const HASH = /^#msg-(\d{1,16})$/;

export function createScrollback(app) {
  const { config, els, list } = app;
  const el = els.list;
  const state = {
    loading: false,
    done: false, // the oldest message of the room is shown
    joined: false,
  };

  function ids() {
    return Array.from(el.querySelectorAll(':scope > li.message[data-id]'), (li) => Number(li.dataset.id));
  }

  function oldestId() {
    const first = el.querySelector(':scope > li.message[data-id]');
    return first ? Number(first.dataset.id) : null;
  }

  async function fetchPage(before) {
    const url = roomUrl(config.room).replace('/rooms/', '/api/rooms/') +
      '/messages?before=' + before + '&limit=' + PAGE;
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const page = await response.json();
    return { messages: Array.isArray(page.messages) ? page.messages : [], more: page.more === true };
  }

  function notice(className, text) {
    const li = document.createElement('li');
    li.className = className;
    li.setAttribute('role', 'status');
    li.textContent = text;
    return li;
  }

  // Build the items of `messages` not shown yet and put them before `anchor` (null:
  // at the end of the list), in the order given (oldest first).
  function insertBefore(messages, anchor) {
    const fragment = document.createDocumentFragment();
    for (const m of messages) {
      if (!m || !Number.isInteger(m.id) || list.findById(m.id)) continue;
      fragment.append(list.build(m));
    }
    el.insertBefore(fragment, anchor);
  }

  // Keep what is on screen where it is while content is added above it.
  function keepingPosition(change) {
    const fromBottom = el.scrollHeight - el.scrollTop;
    change();
    list.relayout();
    el.scrollTop = el.scrollHeight - fromBottom;
  }

  async function loadOlder() {
    if (state.loading || state.done || !state.joined) return;
    const oldest = oldestId();
    if (oldest === null || oldest <= 1) { state.done = oldest !== null; return; }
    state.loading = true;
    const spinner = notice('notice loading-older', t('loading_older'));
    spinner.setAttribute('aria-busy', 'true');
    keepingPosition(() => el.prepend(spinner));
    try {
      const page = await fetchPage(oldest);
      keepingPosition(() => {
        spinner.remove();
        insertBefore(page.messages.filter((m) => m && m.id < oldest), el.firstChild);
      });
      list.setGap(0); // the older messages are here after all
      if (!page.more) state.done = true;
    } catch (e) {
      keepingPosition(() => spinner.remove());
    } finally {
      state.loading = false;
    }
    if (!state.done && el.scrollTop < NEAR_TOP_PX) loadOlder();
  }

  // ---- jump to a message ----
  function highlight(li) {
    for (const old of el.querySelectorAll('li.message.target')) old.classList.remove('target');
    li.classList.add('target');
    li.tabIndex = -1;
    li.scrollIntoView({ block: 'center' });
    li.focus({ preventScroll: true });
  }

  // The line between a page loaded around a message and the newer messages below it.
  function holeLine() {
    const li = notice('notice hole', '');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'link-button';
    button.textContent = t('show_newer');
    button.addEventListener('click', () => fillHole(li));
    li.append(button);
    return li;
  }

  // Load the messages just above the first one below the hole; gone once they meet.
  async function fillHole(hole) {
    if (state.loading) return;
    const below = nextMessage(hole);
    if (!below) { hole.remove(); return; }
    state.loading = true;
    try {
      const top = Number(below.dataset.id);
      const above = previousMessage(hole);
      const floor = above ? Number(above.dataset.id) : 0;
      const page = await fetchPage(top);
      const messages = page.messages.filter((m) => m && m.id > floor && m.id < top);
      keepingPosition(() => insertBefore(messages, below));
      if (!page.more || !messages.length || messages[0].id <= floor + 1) hole.remove();
    } catch (e) {
      // stays: the button can be pressed again
    } finally {
      state.loading = false;
    }
  }

  function nextMessage(node) {
    for (let n = node.nextElementSibling; n; n = n.nextElementSibling) if (n.dataset.id) return n;
    return null;
  }

  function previousMessage(node) {
    for (let n = node.previousElementSibling; n; n = n.previousElementSibling) if (n.dataset.id) return n;
    return null;
  }

  // The newest run of consecutive ids: what the live room keeps adding to.
  function liveIds() {
    const all = ids();
    let i = all.length - 1;
    while (i > 0 && all[i - 1] === all[i] - 1) i -= 1;
    return { all: all, oldest: all.length ? all[i] : null };
  }

  async function jumpTo(id) {
    const shown = list.findById(id);
    if (shown) { highlight(shown); return; }
    const page = await fetchPage(id + 26);
    const live = liveIds();
    // Only the live run stays: anything loaded above it earlier is replaced by the page.
    for (const k of live.all) if (live.oldest === null || k < live.oldest) list.findById(k).remove();
    for (const hole of el.querySelectorAll(':scope > li.hole')) hole.remove();
    const messages = page.messages.filter((m) => m && Number.isInteger(m.id) &&
      (live.oldest === null || m.id < live.oldest));
    if (!messages.length) return;
    const newest = messages[messages.length - 1].id;
    const anchor = live.oldest === null ? null : list.findById(live.oldest);
    let before = anchor;
    if (anchor && newest < live.oldest - 1) {
      before = holeLine();
      anchor.before(before);
    }
    insertBefore(messages, before || el.querySelector(':scope > li.pending, :scope > li.failed'));
    state.done = !page.more;
    list.setGap(0);
    list.relayout();
    const target = list.findById(id);
    if (target) highlight(target);
  }

  function jumpToHash() {
    const match = HASH.exec(window.location.hash);
    if (match && state.joined) jumpTo(Number(match[1])).catch(() => {});
  }

  el.addEventListener('scroll', () => { if (el.scrollTop < NEAR_TOP_PX) loadOlder(); }, { passive: true });
  window.addEventListener('hashchange', jumpToHash);

  return {
    // room.js, after each `joined`: the list was (re)built from the server's history.
    afterJoin(first) {
      state.joined = true;
      if (first) {
        state.done = false;
        jumpToHash();
      }
    },
    loadOlder: loadOlder,
    jumpTo: jumpTo,
  };
}
