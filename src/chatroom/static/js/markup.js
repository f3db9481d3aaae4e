/* Safe rendering of a message's text (SPEC §5 "Rendering"): http(s) URLs become links
 * (new tab, rel="noopener noreferrer nofollow"), `code`, fenced ``` blocks, *bold*,
 * _italic_ and ~strike~. Everything is built as DOM nodes with createElement and text
 * nodes; no string is ever parsed as HTML, so `<b>x</b>` shows as those characters.
 * The stored text is not changed: this is how the UI shows it.
 *
 * Work is linear in the text: the text is cut into tokens (plain text, code, links),
 * then emphasis markers are paired inside the plain tokens; a marker that finds no
 * closing partner is never searched for again in that run, and nesting is capped. */

const FENCE = '```';
const URL_START = /https?:\/\//gi;
const URL_BODY = /[^\s<>"'`]+/y;
const TRAILING = /[.,;:!?*_~'")\]}>]+$/;
const WORD = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;
const EMPHASIS = { '*': 'strong', _: 'em', '~': 's' };
const MAX_DEPTH = 3;

function el(tag, className) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

// The URL if it is a plain http(s) one the browser agrees is such, else null.
function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? text : null;
  } catch (e) {
    return null;
  }
}

// Trim what usually ends a sentence rather than a URL; keep a ")" that closes a "(".
function trimUrl(url) {
  let end = url.length;
  const tail = TRAILING.exec(url);
  if (tail) end = tail.index;
  let out = url.slice(0, end);
  const rest = url.slice(end);
  if (rest.startsWith(')') && (out.split('(').length - 1) > (out.split(')').length - 1)) out += ')';
  return out;
}

// Plain text -> text and link tokens.
function linkTokens(text, out) {
  let last = 0;
  URL_START.lastIndex = 0;
  let m;
  while ((m = URL_START.exec(text)) !== null) {
    const start = m.index;
    if (start > 0 && WORD.test(text[start - 1])) continue; // "xhttp://" is not a link
    URL_BODY.lastIndex = start + m[0].length;
    const body = URL_BODY.exec(text);
    if (!body) continue;
    const candidate = trimUrl(text.slice(start, URL_BODY.lastIndex));
    const url = candidate.length > m[0].length ? safeUrl(candidate) : null;
    if (!url) { URL_START.lastIndex = start + m[0].length; continue; }
    if (start > last) out.push({ kind: 'text', s: text.slice(last, start) });
    out.push({ kind: 'link', s: url });
    last = start + url.length;
    URL_START.lastIndex = last;
  }
  if (last < text.length) out.push({ kind: 'text', s: text.slice(last) });
}

// Text outside fences -> `code` spans, links and plain text.
function inlineTokens(text, out) {
  let pos = 0;
  while (pos < text.length) {
    const open = text.indexOf('`', pos);
    if (open < 0) break;
    const close = text.indexOf('`', open + 1);
    if (close < 0) break;
    const inner = text.slice(open + 1, close);
    if (!inner || inner.includes('\n')) { // not a code span: keep the backtick as text
      linkTokens(text.slice(pos, open + 1), out);
      pos = open + 1;
      continue;
    }
    linkTokens(text.slice(pos, open), out);
    out.push({ kind: 'code', s: inner });
    pos = close + 1;
  }
  linkTokens(text.slice(pos), out);
}

// The whole text -> tokens: fenced blocks first, then the rest.
export function tokenize(text) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    const open = text.indexOf(FENCE, pos);
    if (open < 0) break;
    const close = text.indexOf(FENCE, open + FENCE.length);
    if (close < 0) break;
    inlineTokens(text.slice(pos, open), out);
    let inner = text.slice(open + FENCE.length, close);
    // ```js\n...: an info word on the first line is not part of the code.
    const firstLine = /^[\w+.-]*\n/.exec(inner);
    if (firstLine) inner = inner.slice(firstLine[0].length);
    if (inner.endsWith('\n')) inner = inner.slice(0, -1);
    out.push({ kind: 'fence', s: inner });
    pos = close + FENCE.length;
  }
  inlineTokens(text.slice(pos), out);
  return out;
}

function atom(token) {
  if (token.kind === 'code') {
    const c = el('code');
    c.textContent = token.s;
    return c;
  }
  if (token.kind === 'fence') {
    const pre = el('pre');
    const c = el('code');
    c.textContent = token.s;
    pre.append(c);
    return pre;
  }
  const a = el('a');
  a.href = token.s;
  a.textContent = token.s;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  return a;
}

// The character before / after position i of tokens[ti]: a space at either end of the
// text, ATOM next to a code span or link (neither a space nor a letter, so `*link*`
// is bold).
const ATOM = '\u0000';
function neighbour(token, last) {
  if (!token) return ' ';
  return token.kind === 'text' ? token.s[last ? token.s.length - 1 : 0] : ATOM;
}
function charBefore(tokens, ti, i) {
  return i > 0 ? tokens[ti].s[i - 1] : neighbour(tokens[ti - 1], true);
}
function charAfter(tokens, ti, i) {
  return i + 1 < tokens[ti].s.length ? tokens[ti].s[i + 1] : neighbour(tokens[ti + 1], false);
}

function opens(tokens, ti, i, mark) {
  const after = charAfter(tokens, ti, i);
  return !WORD.test(charBefore(tokens, ti, i)) && !SPACE.test(after) && after !== mark;
}

function closes(tokens, ti, i, mark) {
  const before = charBefore(tokens, ti, i);
  return !SPACE.test(before) && before !== mark && !WORD.test(charAfter(tokens, ti, i));
}

// The first closing `mark` after (ti, i), or null.
function findClose(tokens, ti, i, mark) {
  for (let t = ti; t < tokens.length; t++) {
    if (tokens[t].kind !== 'text') continue;
    const s = tokens[t].s;
    for (let j = s.indexOf(mark, t === ti ? i : 0); j >= 0; j = s.indexOf(mark, j + 1)) {
      if (closes(tokens, t, j, mark)) return { ti: t, i: j };
    }
  }
  return null;
}

// The tokens strictly between (ti, i) and (tj, j).
function between(tokens, ti, i, tj, j) {
  if (ti === tj) return [{ kind: 'text', s: tokens[ti].s.slice(i + 1, j) }];
  const inner = [{ kind: 'text', s: tokens[ti].s.slice(i + 1) }];
  for (let t = ti + 1; t < tj; t++) inner.push(tokens[t]);
  inner.push({ kind: 'text', s: tokens[tj].s.slice(0, j) });
  return inner.filter((tok) => tok.kind !== 'text' || tok.s);
}

function render(tokens, depth) {
  const out = [];
  const exhausted = new Set(); // markers with no closing partner left in this run
  let buf = '';
  const flush = () => { if (buf) { out.push(document.createTextNode(buf)); buf = ''; } };
  let ti = 0;
  let i = 0;
  while (ti < tokens.length) {
    const tok = tokens[ti];
    if (tok.kind !== 'text') { flush(); out.push(atom(tok)); ti += 1; i = 0; continue; }
    if (i >= tok.s.length) { ti += 1; i = 0; continue; }
    const ch = tok.s[i];
    const tag = EMPHASIS[ch];
    if (tag && depth < MAX_DEPTH && !exhausted.has(ch) && opens(tokens, ti, i, ch)) {
      const close = findClose(tokens, ti, i + 1, ch);
      if (close) {
        flush();
        const e = el(tag);
        e.append(...render(between(tokens, ti, i, close.ti, close.i), depth + 1));
        out.push(e);
        ti = close.ti;
        i = close.i + 1;
        continue;
      }
      exhausted.add(ch);
    }
    buf += ch;
    i += 1;
  }
  flush();
  return out;
}

// The nodes that show `text`.
export function renderNodes(text) {
  return render(tokenize(String(text)), 0);
}

// Show `text` in `target`, replacing what it held.
export function renderText(target, text) {
  target.replaceChildren(...renderNodes(text));
}
