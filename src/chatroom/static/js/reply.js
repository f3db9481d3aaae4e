/* Replies (SPEC §5 `send` with `reply_to`): "Replying to alice: …" above the message
 * box with a cancel button (Esc in the box cancels too), and the quoted parent above a
 * reply, which scrolls to the parent when it is loaded. */

import { t } from './i18n.js';

const QUOTE_CHARS = 200; // what the server keeps of the parent's text (SPEC §5)
const FLASH_MS = 2000;

export function createReply(app) {
  const { els, list } = app;
  const preview = document.getElementById('reply-preview');
  const state = { parent: null };

  function show() {
    if (!preview) return;
    const p = state.parent;
    preview.hidden = !p;
    preview.querySelector('.reply-author').textContent = p ? p.user : '';
    preview.querySelector('.reply-text').textContent = p ? p.text : '';
  }

  function start(li) {
    const item = list.item(li);
    if (!item || !Number.isInteger(item.id) || item.deleted) return;
    const text = Array.from(String(item.text)).slice(0, QUOTE_CHARS).join('');
    state.parent = { id: item.id, user: String(item.user), text: text };
    show();
    els.input.focus();
  }

  function cancel() {
    state.parent = null;
    show();
  }

  // The parent of the next message sent (and forget it).
  function take() {
    const p = state.parent;
    cancel();
    return p;
  }

  // Scroll to message `id` and flash it; false when it is not loaded.
  function jumpTo(id) {
    const li = list.findById(id);
    if (!li || li.classList.contains('pending')) return false;
    li.scrollIntoView({ block: 'center' });
    li.classList.add('flash');
    setTimeout(() => li.classList.remove('flash'), FLASH_MS);
    const more = li.querySelector('.more');
    if (more) more.focus({ preventScroll: true });
    return true;
  }

  if (preview) {
    const close = preview.querySelector('.dismiss');
    if (close) close.addEventListener('click', () => { cancel(); els.input.focus(); });
  }
  els.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && state.parent) { ev.preventDefault(); cancel(); }
  });
  els.list.addEventListener('click', (ev) => {
    const jump = ev.target.closest('.reply-jump');
    if (!jump || !jump.dataset.id) return;
    if (!jumpTo(Number(jump.dataset.id))) app.notices.alert('reply_not_loaded', t('reply_not_loaded'));
  });

  return { start: start, cancel: cancel, take: take, jumpTo: jumpTo, active() { return state.parent !== null; } };
}
