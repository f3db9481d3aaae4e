/* The emoji picker for reactions: a small built-in set (no CDN, no images: the
 * system's emoji font) and a "recently used" row kept in localStorage. It is a dialog
 * of buttons in a grid: arrow keys move between them, Enter or Space picks, Esc
 * closes and gives the focus back to the control that opened it. */

import { t } from './i18n.js';
import { store } from './store.js';

export const EMOJI = [
  '👍', '👎', '❤️', '😂', '😮', '😢', '😡', '🎉',
  '🙏', '👀', '🔥', '✅', '❌', '🚀', '💯', '🤔',
  '😀', '😅', '😍', '😎', '🙌', '👏', '💪', '🤝',
  '⭐', '💡', '⚠️', '❓', '☕', '🍕', '🐛', '👋',
];
const RECENT_KEEP = 8;
const COLUMNS = 8;

export function createEmojiPicker({ keys }) {
  const recentKey = keys.emojiRecent;
  const state = { dialog: null, onPick: null, opener: null };

  function recent() {
    const list = store.get(recentKey, []);
    return Array.isArray(list) ? list.filter((e) => typeof e === 'string' && e).slice(0, RECENT_KEEP) : [];
  }

  function remember(emoji) {
    store.set(recentKey, [emoji, ...recent().filter((e) => e !== emoji)].slice(0, RECENT_KEEP));
  }

  function row(label, emojis, className) {
    const section = document.createElement('div');
    section.className = 'emoji-row ' + className;
    const heading = document.createElement('p');
    heading.className = 'emoji-heading';
    heading.textContent = label;
    const grid = document.createElement('div');
    grid.className = 'emoji-grid';
    grid.setAttribute('role', 'group');
    grid.setAttribute('aria-label', label);
    for (const emoji of emojis) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'emoji-choice';
      b.dataset.emoji = emoji;
      b.textContent = emoji;
      b.tabIndex = -1;
      b.setAttribute('aria-label', emoji);
      grid.append(b);
    }
    section.append(heading, grid);
    return section;
  }

  function choices() {
    return state.dialog ? Array.from(state.dialog.querySelectorAll('.emoji-choice')) : [];
  }

  function focusChoice(index) {
    const all = choices();
    if (!all.length) return;
    const i = Math.max(0, Math.min(all.length - 1, index));
    for (const b of all) b.tabIndex = -1;
    all[i].tabIndex = 0;
    all[i].focus();
  }

  function close(giveFocusBack) {
    if (!state.dialog) return;
    state.dialog.remove();
    state.dialog = null;
    if (giveFocusBack && state.opener && state.opener.isConnected) state.opener.focus();
    state.opener = null;
    state.onPick = null;
  }

  function pick(emoji) {
    const onPick = state.onPick;
    remember(emoji);
    close(true);
    if (onPick) onPick(emoji);
  }

  function onKey(ev) {
    const all = choices();
    const at = all.indexOf(document.activeElement);
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS, Home: -Infinity, End: Infinity };
    if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      close(true);
    } else if (ev.key in moves && at >= 0) {
      ev.preventDefault();
      const step = moves[ev.key];
      focusChoice(Number.isFinite(step) ? at + step : step < 0 ? 0 : all.length - 1);
    } else if (ev.key === 'Tab') {
      close(false); // leaving the picker closes it
    }
  }

  // Open the picker inside `host` (after `opener`); `onPick(emoji)` when one is chosen.
  function open(host, opener, onPick) {
    close(false);
    const dialog = document.createElement('div');
    dialog.className = 'emoji-picker';
    dialog.setAttribute('role', 'dialog');
    dialog.setAttribute('aria-label', t('emoji_picker'));
    const used = recent();
    if (used.length) dialog.append(row(t('emoji_recent'), used, 'recent'));
    dialog.append(row(t('emoji_all'), EMOJI, 'all'));
    dialog.addEventListener('keydown', onKey);
    dialog.addEventListener('click', (ev) => {
      const b = ev.target.closest('.emoji-choice');
      if (b) pick(b.dataset.emoji);
    });
    dialog.addEventListener('focusout', (ev) => {
      if (state.dialog === dialog && ev.relatedTarget && !dialog.contains(ev.relatedTarget)) close(false);
    });
    state.dialog = dialog;
    state.opener = opener;
    state.onPick = onPick;
    host.append(dialog);
    focusChoice(0);
  }

  document.addEventListener('pointerdown', (ev) => {
    if (state.dialog && !state.dialog.contains(ev.target) && ev.target !== state.opener) close(false);
  });

  return { open: open, close: close, isOpen() { return state.dialog !== null; }, recent: recent };
}
