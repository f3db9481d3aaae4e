/* Files in the composer (SPEC §9): the attach button, drag and drop onto the room,
 * pasting a screenshot; each file is uploaded at once with XMLHttpRequest (for its
 * progress bar, and Cancel), listed above the message box, and sent with the next
 * message as its `files`. A failed upload retries by itself when the network is back
 * (like the outbox does for messages), or with its Retry button. Also renders the
 * files of a message: image thumbnails (a link to the full size) and file chips. */

import { errorText, t } from './i18n.js';
import { xsrfToken } from './forms.js';

const INLINE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const THUMB_PIXELS = 320;
const RETRY_DELAYS_MS = [2000, 5000, 15000, 30000];

export function humanSize(size) {
  let value = Number(size) || 0;
  for (const unit of ['B', 'KB', 'MB']) {
    if (value < 1024 || unit === 'MB') return unit === 'B' ? value.toFixed(0) + ' B' : value.toFixed(1) + ' ' + unit;
    value /= 1024;
  }
  return value.toFixed(1) + ' MB';
}

export function fileIcon(type) {
  const kind = String(type || '');
  if (kind.startsWith('image/')) return '🖼';
  if (kind.startsWith('audio/')) return '🎵';
  if (kind.startsWith('video/')) return '🎬';
  if (['application/zip', 'application/gzip', 'application/x-7z-compressed'].includes(kind)) return '🗜';
  if (kind === 'application/pdf' || kind.startsWith('text/')) return '📄';
  return '📎';
}

// Only our own file URLs are ever linked: /files/<id>/<name>.
function safeUrl(url) {
  return typeof url === 'string' && /^\/files\/[A-Za-z0-9_-]+\/[^?#]*$/.test(url) ? url : null;
}

// The files of a message, into its `.files` element (textContent and attributes only).
export function renderFiles(container, files) {
  container.replaceChildren();
  const list = Array.isArray(files) ? files : [];
  container.hidden = list.length === 0;
  for (const f of list) {
    const url = f && safeUrl(f.url);
    if (!url) continue;
    const name = String(f.name || '');
    const a = document.createElement('a');
    a.href = url;
    if (INLINE_TYPES.has(f.type) && Number.isInteger(f.width) && Number.isInteger(f.height)) {
      a.className = 'file-image';
      a.target = '_blank';
      a.rel = 'noopener';
      a.title = t('open_image', { name: name });
      const img = document.createElement('img');
      const scale = Math.min(1, THUMB_PIXELS / Math.max(f.width, f.height, 1));
      img.width = Math.max(1, Math.round(f.width * scale));
      img.height = Math.max(1, Math.round(f.height * scale));
      img.alt = name;
      img.loading = 'lazy';
      img.src = url + '?thumb=1';
      a.append(img);
    } else {
      a.className = 'file-chip';
      a.download = name;
      a.setAttribute('aria-label', t('download_file', { name: name, size: humanSize(f.size) }));
      const icon = document.createElement('span');
      icon.className = 'file-icon';
      icon.setAttribute('aria-hidden', 'true');
      icon.textContent = fileIcon(f.type);
      const label = document.createElement('span');
      label.className = 'file-name';
      label.textContent = name;
      const size = document.createElement('span');
      size.className = 'file-size';
      size.textContent = humanSize(f.size);
      a.append(icon, label, ' ', size);
    }
    container.append(a);
  }
}

export function createUploads(app) {
  const { config, els } = app;
  const tray = document.getElementById('attachments');
  const button = document.getElementById('attach');
  const input = document.getElementById('file-input');
  const items = []; // {key, file, state: 'uploading'|'done'|'failed', xhr, result, li, tries, timer}
  let nextKey = 1;
  if (!tray || !button || !input) return { ready: () => [], busy: () => false, clear() {} };
  button.hidden = false;

  function uploadUrl(name) {
    return '/api/rooms/' + encodeURIComponent(config.room) + '/files?name=' + encodeURIComponent(name);
  }

  function render(item) {
    const li = item.li;
    li.replaceChildren();
    li.dataset.state = item.state;
    const icon = document.createElement('span');
    icon.className = 'file-icon';
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = fileIcon(item.file.type);
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = item.file.name;
    const size = document.createElement('span');
    size.className = 'file-size';
    size.textContent = humanSize(item.file.size);
    const status = document.createElement('span');
    status.className = 'upload-status';
    li.append(icon, name, ' ', size, ' ', status);
    if (item.state === 'uploading') {
      const bar = document.createElement('progress');
      bar.max = 100;
      bar.value = item.percent || 0;
      bar.setAttribute('aria-label', item.file.name);
      status.textContent = t('uploading', { percent: Math.round(item.percent || 0) });
      li.append(bar);
    } else if (item.state === 'done') {
      status.textContent = t('uploaded');
    } else {
      status.textContent = t('upload_failed') + (item.code ? ': ' + errorText(item.code) : '');
      li.append(actionButton('retry-upload', t('retry_upload'), ''));
    }
    const label = item.state === 'uploading' ? 'cancel_upload' : 'remove_file';
    li.append(actionButton('remove-upload', '✕', t(label, { name: item.file.name })));
    sync();
  }

  // The message box may stay empty once a file is ready to go.
  function sync() {
    tray.hidden = items.length === 0;
    els.input.required = !items.some((i) => i.state === 'done');
  }

  function actionButton(action, text, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link-button';
    b.dataset.action = action;
    b.textContent = text;
    if (label) b.setAttribute('aria-label', label);
    return b;
  }

  function progress(item, percent) {
    item.percent = percent;
    const bar = item.li.querySelector('progress');
    if (bar) bar.value = percent;
    const status = item.li.querySelector('.upload-status');
    if (status) status.textContent = t('uploading', { percent: Math.round(percent) });
  }

  function start(item) {
    clearTimeout(item.timer);
    item.state = 'uploading';
    item.percent = 0;
    item.code = null;
    render(item);
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    xhr.open('POST', uploadUrl(item.file.name));
    xhr.setRequestHeader('X-XSRFToken', xsrfToken());
    xhr.setRequestHeader('Content-Type', item.file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable) progress(item, (100 * ev.loaded) / ev.total);
    });
    xhr.addEventListener('load', () => {
      item.xhr = null;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 201 && data && data.file) {
        item.state = 'done';
        item.result = data.file;
        render(item);
        return;
      }
      const code = data && data.error && typeof data.error.code === 'string' ? data.error.code : 'error';
      // The file itself was refused (too large, broken): retrying cannot help.
      const final = xhr.status >= 400 && xhr.status < 500 && xhr.status !== 429 && xhr.status !== 408;
      fail(item, code, final);
      if (final && data && data.error) app.notices.alert(code, String(data.error.message || errorText(code)));
      if (xhr.status === 429) retryLater(item, (Number(xhr.getResponseHeader('Retry-After')) || 5) * 1000);
    });
    xhr.addEventListener('error', () => { item.xhr = null; fail(item, 'unavailable', false); retryLater(item); });
    xhr.addEventListener('abort', () => { item.xhr = null; });
    xhr.send(item.file);
  }

  function fail(item, code, final) {
    item.state = 'failed';
    item.code = code;
    item.final = final;
    render(item);
  }

  // Like the outbox: try again by itself, sooner when the browser says it is online.
  function retryLater(item, delay) {
    const wait = delay || RETRY_DELAYS_MS[Math.min(item.tries, RETRY_DELAYS_MS.length - 1)];
    item.tries += 1;
    clearTimeout(item.timer);
    item.timer = setTimeout(() => { if (item.state === 'failed' && items.includes(item)) start(item); }, wait);
  }

  function add(files) {
    for (const file of files) {
      if (!file) continue;
      const item = { key: nextKey++, file: file, state: 'uploading', tries: 0, li: document.createElement('li') };
      item.li.dataset.key = String(item.key);
      if (file.size > config.maxUploadBytes) {
        items.push(item);
        tray.append(item.li);
        fail(item, 'too_large', true);
        app.notices.alert('too_large', t('upload_too_large', { name: file.name, max: humanSize(config.maxUploadBytes) }));
        continue;
      }
      items.push(item);
      tray.append(item.li);
      start(item);
    }
    sync();
  }

  function remove(item) {
    clearTimeout(item.timer);
    if (item.xhr) item.xhr.abort();
    items.splice(items.indexOf(item), 1);
    item.li.remove();
    sync();
  }

  tray.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action]');
    const li = b && b.closest('li[data-key]');
    const item = li && items.find((i) => String(i.key) === li.dataset.key);
    if (!item) return;
    if (b.dataset.action === 'remove-upload') { remove(item); els.input.focus(); }
    else if (b.dataset.action === 'retry-upload') start(item);
  });

  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    add(Array.from(input.files || []));
    input.value = '';
    els.input.focus();
  });

  // Paste: a screenshot (or files copied in a file manager) from the clipboard.
  els.input.addEventListener('paste', (ev) => {
    const files = Array.from((ev.clipboardData && ev.clipboardData.files) || []);
    if (!files.length) return;
    ev.preventDefault();
    const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-');
    add(files.map((f) => (f.name && f.name !== 'image.png' ? f :
      new File([f], 'screenshot-' + stamp + '.' + ((f.type || 'image/png').split('/')[1] || 'png'), { type: f.type }))));
  });

  // Drag and drop anywhere on the room.
  const zone = els.list.closest('main') || els.list;
  const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes('Files');
  zone.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dropping');
  });
  zone.addEventListener('dragleave', (ev) => { if (ev.target === zone) zone.classList.remove('dropping'); });
  zone.addEventListener('drop', (ev) => {
    zone.classList.remove('dropping');
    if (!ev.dataTransfer || !ev.dataTransfer.files || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    add(Array.from(ev.dataTransfer.files));
    els.input.focus();
  });
  zone.dataset.dropLabel = t('drop_files');

  window.addEventListener('online', () => {
    for (const item of items) if (item.state === 'failed' && !item.final) start(item);
  });

  return {
    // The uploaded files' objects, for the next message.
    ready() { return items.filter((i) => i.state === 'done').map((i) => i.result); },
    busy() { return items.some((i) => i.state === 'uploading' || (i.state === 'failed' && !i.final)); },
    // The message with the ready files was sent: they leave the tray.
    clear() { for (const item of items.filter((i) => i.state === 'done')) remove(item); },
  };
}
