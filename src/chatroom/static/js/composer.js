/* The message box: Enter sends (Shift+Enter is a new line), it grows with its text,
 * keeps a draft per room, and tells the room "typing" at most as often as the server
 * relays it (data-typing-interval). */

import { t } from './i18n.js';
import { store } from './store.js';

export function createComposer(app) {
  const { config, els, conn } = app;
  const input = els.input;
  const draftKey = app.keys.draftPrefix + config.room;
  let lastTypingSent = 0;

  // The box grows with its text, up to a limit set in chat.css (max-height).
  function fit() {
    input.style.height = 'auto';
    input.style.height = input.scrollHeight + 2 + 'px';
  }

  function saveDraft() {
    if (input.value) store.set(draftKey, input.value);
    else store.remove(draftKey);
  }

  function submit() {
    const text = input.value;
    // issue 15: the uploaded files go with the message; the text may then be empty.
    const uploads = app.uploads;
    if (uploads && uploads.busy()) { app.notices.alert('uploading', t('wait_for_uploads')); return; }
    const files = uploads ? uploads.ready() : [];
    if (!text.trim() && !files.length) return;
    app.sender.submit(text.trim() ? text : '', files, app.reply ? app.reply.take() : null);
    if (uploads) uploads.clear();
    input.value = '';
    fit();
    saveDraft();
  }

  els.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    input.focus();
  });

  input.addEventListener('keydown', (ev) => {
    // issue 12: Up-arrow in the empty box edits one's last message.
    if (ev.key === 'ArrowUp' && !input.value && !ev.shiftKey && !ev.altKey && app.editing && app.editing.editLast()) {
      ev.preventDefault();
      return;
    }
    if (ev.key !== 'Enter' || ev.shiftKey || ev.altKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    submit();
  });

  input.addEventListener('input', () => {
    fit();
    saveDraft();
    const now = Date.now();
    if (input.value && conn.isReady() && now - lastTypingSent >= config.typingIntervalMs) {
      lastTypingSent = now;
      conn.send({ type: 'typing', room: config.room });
    }
  });

  const draft = store.get(draftKey, '');
  if (typeof draft === 'string' && draft && !input.value) input.value = draft;

  return { fit: fit };
}
