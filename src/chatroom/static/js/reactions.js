/* Reaction chips under a message (SPEC §5): one per emoji with its count, who reacted
 * in the tooltip (and the accessible name), pressed when one of them is you; clicking a
 * chip toggles your reaction. The chip's markup is the prototype chip in the page's
 * <template id="message-template"> (templates/_message.html); reactions are kept per
 * item as {emoji: [usernames in the order they reacted]}. */

import { t } from './i18n.js';

// A copy of `reactions` with only well-formed entries.
export function cleanReactions(reactions) {
  const out = {};
  if (!reactions || typeof reactions !== 'object') return out;
  for (const [emoji, users] of Object.entries(reactions)) {
    if (!emoji || !Array.isArray(users)) continue;
    const names = users.filter((u) => typeof u === 'string');
    if (names.length) out[emoji] = names;
  }
  return out;
}

// `reactions` with `user`'s `emoji` turned on or off (a new object).
export function withReaction(reactions, emoji, user, on) {
  const out = cleanReactions(reactions);
  const users = (out[emoji] || []).filter((u) => u !== user);
  if (on) users.push(user);
  if (users.length) out[emoji] = users;
  else delete out[emoji];
  return out;
}

// Fill `container` (a message's .reactions) with chips cloned from `proto`.
export function renderReactions(container, reactions, me, proto) {
  if (!container) return;
  container.replaceChildren();
  const entries = Object.entries(cleanReactions(reactions));
  container.hidden = entries.length === 0;
  for (const [emoji, users] of entries) {
    const chip = proto.cloneNode(true);
    const mine = users.includes(me);
    chip.dataset.emoji = emoji;
    chip.setAttribute('aria-pressed', mine ? 'true' : 'false');
    chip.title = users.join(', ');
    chip.setAttribute('aria-label', t('reaction_label', { emoji: emoji, count: users.length, users: users.join(', ') }));
    chip.querySelector('.emoji').textContent = emoji;
    chip.querySelector('.count').textContent = String(users.length);
    container.append(chip);
  }
}
