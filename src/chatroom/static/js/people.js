/* Who is in the room: the online list (a name links to the direct conversation with
 * that person) and "bob is typing…". A typing notice lasts two of the server's typing
 * intervals (data-typing-interval) without news. */

import { compareNames, t } from './i18n.js';
import { avatarEl, dmUrl } from './names.js';

export function createPeople({ config, els }) {
  const state = {
    online: new Set(),
    typers: new Map(), // user -> timeout that drops the notice
  };
  const typingShowMs = 2 * config.typingIntervalMs;

  function renderOnline() {
    if (!els.online) return;
    const names = Array.from(state.online).sort(compareNames);
    els.online.replaceChildren(...names.map((name) => {
      const li = document.createElement('li');
      li.dataset.user = name;
      const avatar = avatarEl(name, config.avatarHues, 'small');
      if (name === config.me) {
        li.className = 'me';
        li.append(avatar, name + ' ' + t('you'));
      } else {
        const a = document.createElement('a');
        a.href = dmUrl(name);
        a.title = t('chat_with', { user: name });
        a.append(avatar, name);
        li.append(a);
      }
      return li;
    }));
  }

  function renderTyping() {
    if (!els.typing) return;
    const names = Array.from(state.typers.keys());
    let text = '';
    if (names.length === 1) text = t('typing_one', { user: names[0] });
    else if (names.length === 2) text = t('typing_two', { user: names[0], other: names[1] });
    else if (names.length > 2) text = t('typing_many');
    if (els.typing.textContent !== text) els.typing.textContent = text;
  }

  function dropTyper(user) {
    if (!state.typers.has(user)) return;
    clearTimeout(state.typers.get(user));
    state.typers.delete(user);
    renderTyping();
  }

  return {
    dropTyper: dropTyper,
    // The `online` list of a `joined` frame.
    setOnline(users) {
      state.online.clear();
      if (Array.isArray(users)) for (const u of users) if (typeof u === 'string') state.online.add(u);
      renderOnline();
    },
    onPresence(f) {
      if (f.room !== config.room || typeof f.user !== 'string') return;
      if (f.state === 'online') state.online.add(f.user);
      else if (f.state === 'offline') { state.online.delete(f.user); dropTyper(f.user); }
      renderOnline();
    },
    onTyping(f) {
      if (f.room !== config.room || typeof f.user !== 'string' || f.user === config.me) return;
      clearTimeout(state.typers.get(f.user));
      state.typers.set(f.user, setTimeout(() => dropTyper(f.user), typingShowMs));
      renderTyping();
    },
    clearTypers() {
      for (const timer of state.typers.values()) clearTimeout(timer);
      state.typers.clear();
      renderTyping();
    },
  };
}
