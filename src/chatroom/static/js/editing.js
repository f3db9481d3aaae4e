/* Editing one's own message in place (SPEC §5 `edit`): the text turns into a box with
 * Save and Cancel; Enter saves (Shift+Enter is a new line), Esc cancels. Up-arrow in an
 * empty message box edits one's last message. The new text shows when the server's
 * `edited` frame arrives (room.js), so every tab of every member agrees. */

import { t } from './i18n.js';

export function createEditing(app) {
  const { config, els, list } = app;
  const state = { li: null, form: null };

  function stop(focusComposer) {
    if (!state.li) return;
    state.form.remove();
    const text = state.li.querySelector('.text');
    if (text) text.hidden = false;
    state.li.classList.remove('editing');
    state.li = null;
    state.form = null;
    if (focusComposer) els.input.focus();
  }

  function save(box) {
    const li = state.li;
    const item = li && list.item(li);
    const text = box.value;
    if (!item || !text.trim()) return; // an empty text is not an edit (delete is)
    if (text !== item.text) app.actions.send({ type: 'edit', id: item.id, text: text });
    stop(true);
  }

  function button(label, onClick, quiet) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    if (quiet) b.className = 'quiet';
    b.addEventListener('click', onClick);
    return b;
  }

  function start(li) {
    stop(false);
    const item = list.item(li);
    if (!item || li.classList.contains('deleted') || item.user !== config.me || !Number.isInteger(item.id)) return;
    const form = document.createElement('div');
    form.className = 'edit-form';
    const box = document.createElement('textarea');
    box.className = 'edit-box';
    box.value = String(item.text);
    box.rows = Math.min(8, box.value.split('\n').length);
    box.maxLength = els.input.maxLength;
    box.setAttribute('aria-label', t('edit_label'));
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); stop(true); }
      else if (ev.key === 'Enter' && !ev.shiftKey && !ev.altKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        save(box);
      }
    });
    const hint = document.createElement('p');
    hint.className = 'edit-hint';
    hint.textContent = t('edit_hint') + ' ';
    hint.append(button(t('save'), () => save(box)), ' ', button(t('cancel'), () => stop(true), true));
    form.append(box, hint);
    const text = li.querySelector('.text');
    text.hidden = true;
    text.after(form);
    li.classList.add('editing');
    state.li = li;
    state.form = form;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  // Up-arrow in the empty message box: one's newest message still there.
  function editLast() {
    const mine = list.findLastOwn ? list.findLastOwn() : null;
    if (!mine) return false;
    mine.scrollIntoView({ block: 'nearest' });
    start(mine);
    return true;
  }

  return {
    start: start,
    editLast: editLast,
    // The message went away (deleted): so does its editor.
    dropped(li) { if (state.li === li) stop(true); },
  };
}
