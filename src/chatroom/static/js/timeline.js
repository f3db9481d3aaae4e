/* The shape of the message list: a day separator above the first message of each local
 * day, and consecutive messages of one author within the server's grouping window
 * (data-group-seconds) under one header. Cheap enough to redo after every change. */

import { dayKey, dayLabel, setTime } from './i18n.js';

function messageTs(li) {
  const time = li.querySelector('time');
  const ts = time ? Number(time.dataset.ts) : NaN;
  return Number.isFinite(ts) ? ts : null;
}

// The server renders times in UTC; show them in the viewer's time zone.
export function localizeTimes(list) {
  for (const time of list.querySelectorAll('time[data-ts]')) setTime(time, time.dataset.ts);
}

function daySeparator(li, day) {
  let anchor = li;
  const before = li.previousElementSibling;
  if (before && before.classList.contains('divider')) anchor = before;
  let sep = anchor.previousElementSibling;
  if (!(sep && sep.classList.contains('day') && sep.dataset.day === day)) {
    sep = document.createElement('li');
    sep.className = 'day';
    sep.dataset.day = day;
    sep.append(document.createElement('span'));
    anchor.before(sep);
  }
  return sep;
}

export function relayout(list, groupSeconds) {
  const keep = new Set();
  let prev = null;
  let prevDay = null;
  let prevTs = null;
  for (const li of Array.from(list.children)) {
    if (!li.classList.contains('message')) continue;
    const ts = messageTs(li);
    const day = ts === null ? prevDay : dayKey(ts);
    let newDay = false;
    if (day !== null && day !== prevDay) {
      newDay = true;
      const sep = daySeparator(li, day);
      const label = dayLabel(ts);
      if (sep.firstElementChild.textContent !== label) sep.firstElementChild.textContent = label;
      keep.add(sep);
    }
    const cont = !newDay && prev !== null && li.previousElementSibling === prev &&
      prev.dataset.user === li.dataset.user && ts !== null && prevTs !== null &&
      ts - prevTs < groupSeconds && !li.classList.contains('failed') && !prev.classList.contains('failed');
    li.classList.toggle('cont', cont);
    prev = li;
    prevDay = day;
    prevTs = ts;
  }
  for (const sep of Array.from(list.querySelectorAll(':scope > li.day'))) if (!keep.has(sep)) sep.remove();
}
