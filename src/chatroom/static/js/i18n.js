/* Words and dates in the page's language. Translated strings come from the page's
 * <script type="application/json" id="i18n"> block (views/strings.py client_strings);
 * dates and times use the browser's Intl API in the viewer's time zone. */

const LANG = document.documentElement.lang || undefined;

function readStrings() {
  try {
    const block = document.getElementById('i18n');
    return (block && JSON.parse(block.textContent)) || {};
  } catch (e) {
    return {};
  }
}
const STRINGS = readStrings();

// Before the page's strings load, or if the block is broken: the connection states.
const ENGLISH = {
  state_connecting: 'connecting…',
  state_connected: 'connected',
  state_reconnecting: 'reconnecting in %(seconds)ss',
  state_offline: 'offline',
};

// t('typing_one', {user: 'bob'}): the translated string with %(name)s filled in.
export function t(key, params) {
  let text = typeof STRINGS[key] === 'string' ? STRINGS[key] : ENGLISH[key] || key;
  if (params) {
    text = text.replace(/%\((\w+)\)s/g, (all, name) => (name in params ? String(params[name]) : all));
  }
  return text;
}

// The sentence for a protocol error code.
export function errorText(code) {
  const known = STRINGS.errors && typeof STRINGS.errors[code] === 'string' ? STRINGS.errors[code] : null;
  return known || t('error', { code: code });
}

// Sorting names the way the reader expects.
export function compareNames(a, b) {
  return a.localeCompare(b, LANG, { sensitivity: 'base' });
}

export function capitalize(word) {
  return word.charAt(0).toLocaleUpperCase(LANG) + word.slice(1);
}

function format(options) {
  try { return new Intl.DateTimeFormat(LANG, options); } catch (e) { return new Intl.DateTimeFormat(undefined, options); }
}
const fmtTime = format({ hour: '2-digit', minute: '2-digit' });
const fmtDate = format({ weekday: 'long', month: 'long', day: 'numeric' });
const fmtDateYear = format({ weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
let fmtFull;
try { fmtFull = format({ dateStyle: 'full', timeStyle: 'long' }); } catch (e) { fmtFull = fmtDateYear; }
let relative = null;
try { relative = new Intl.RelativeTimeFormat(LANG, { numeric: 'auto' }); } catch (e) { relative = null; }

// Fill a <time> with the local time of `ts` (seconds), the full date as its tooltip.
export function setTime(el, ts) {
  const seconds = Number(ts);
  if (!Number.isFinite(seconds)) return;
  const d = new Date(seconds * 1000);
  el.dataset.ts = String(ts);
  el.dateTime = d.toISOString();
  el.title = fmtFull.format(d);
  el.textContent = fmtTime.format(d);
}

// The full local date and time of `ts` (seconds), as in a message time's tooltip.
export function fullDate(ts) {
  return fmtFull.format(new Date(Number(ts) * 1000));
}

// "2024-05-01": the local day of `seconds`, for grouping.
export function dayKey(seconds) {
  const d = new Date(seconds * 1000);
  return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');
}

// "Today", "Yesterday", or the date, in the page's language.
export function dayLabel(seconds) {
  const d = new Date(seconds * 1000);
  const today = new Date();
  const midnight = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((midnight(d) - midnight(today)) / 86400000);
  if (relative && (days === 0 || days === -1)) return capitalize(relative.format(days, 'day'));
  return (d.getFullYear() === today.getFullYear() ? fmtDate : fmtDateYear).format(d);
}
