/* What the browser keeps for a user: drafts, the outbox of unsent messages, and the
 * notification choice, in localStorage with an in-memory fallback when it is refused. */

const memory = new Map();

export const store = {
  get(key, fallback) {
    let raw = memory.has(key) ? memory.get(key) : null;
    if (raw === null) {
      try { raw = window.localStorage.getItem(key); } catch (e) { raw = null; }
    }
    if (raw === null) return fallback;
    try { return JSON.parse(raw); } catch (e) { return fallback; }
  },
  set(key, value) {
    const raw = JSON.stringify(value);
    try { window.localStorage.setItem(key, raw); memory.delete(key); } catch (e) { memory.set(key, raw); }
  },
  remove(key) {
    memory.delete(key);
    try { window.localStorage.removeItem(key); } catch (e) { /* unavailable */ }
  },
};

// The storage keys of one user (by the lowercased name).
export function userKeys(userKey) {
  return {
    outbox: 'chatroom:outbox:' + userKey,
    draftPrefix: 'chatroom:draft:' + userKey + ':',
    notify: 'chatroom:notify:' + userKey,
    emojiRecent: 'chatroom:emoji-recent:' + userKey, // issue 12: the picker's recently used row
  };
}

// The outbox: sends not yet acknowledged, in order, with their client_id (so a retry
// after a dropped connection is never stored twice). Shared by this user's tabs.
export function createOutbox(key) {
  return {
    all() {
      const list = store.get(key, []);
      if (!Array.isArray(list)) return [];
      return list.filter((e) => e && typeof e.client_id === 'string' &&
        typeof e.room === 'string' && typeof e.text === 'string');
    },
    save(list) { if (list.length) store.set(key, list); else store.remove(key); },
    add(entry) { const list = this.all(); list.push(entry); this.save(list); },
    find(cid) { return this.all().find((e) => e.client_id === cid); },
    remove(cid) {
      const list = this.all();
      const kept = list.filter((e) => e.client_id !== cid);
      if (kept.length !== list.length) this.save(kept);
    },
    update(cid, patch) {
      this.save(this.all().map((e) => (e.client_id === cid ? Object.assign({}, e, patch) : e)));
    },
  };
}

// Log out: forget the user's queued messages and drafts on this device.
export function forgetUser(keys) {
  store.remove(keys.outbox);
  try {
    const found = [];
    for (let i = 0; i < window.localStorage.length; i++) found.push(window.localStorage.key(i));
    for (const k of found) if (k && k.startsWith(keys.draftPrefix)) window.localStorage.removeItem(k);
  } catch (e) { /* unavailable */ }
}

export function newClientId() {
  if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
