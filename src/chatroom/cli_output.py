"""How the operator commands print: the admin controller's results as terminal text or
JSON, with control and bidi characters escaped so that no stored text can move the
cursor, reorder or hide what an operator sees."""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime, timezone

from chatroom.controllers.admin import HistoryExport, RoomInfo, Stats, UserInfo
from chatroom.controllers.audit import AuditRecord
from chatroom.controllers.files import GcReport
from chatroom.controllers.signup import InviteInfo


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters escaped, one line.

    Every character ``str.isprintable`` refuses is shown as its escape: C0 and
    C1 controls, bidi embeddings, overrides and isolates (U+202A-U+202E,
    U+2066-U+2069), the marks U+200E/U+200F, line and paragraph separators.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# Only non-ASCII characters (and DEL) can be unprintable in json.dumps' output: it
# escapes the ASCII controls itself.
_JSON_SUSPECT_RE = re.compile(r"[^\x20-\x7e\n]")


def _json_escape(match: re.Match) -> str:
    char = match.group()
    if char.isprintable():
        return char
    code = ord(char)
    if code > 0xFFFF:  # JSON writes a character outside the BMP as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def printable_json(data: object, indent: int | None = 2) -> str:
    """``data`` as indented JSON that is safe to print on a terminal.

    Letters of any script stay as they are, but every character ``printable``
    escapes is written as a JSON ``\\uXXXX`` escape instead (the same text once
    parsed): a bidi override or a C1 control in a message cannot reorder, hide
    or forge what an operator sees of ``chatroom history --json``. ``indent=None``:
    one line (JSON lines).
    """
    return _JSON_SUSPECT_RE.sub(_json_escape, json.dumps(data, indent=indent, ensure_ascii=False))


def json_text(result: object) -> str:
    """A result (or a list of them) as ``--json`` prints it: its ``public()`` form."""
    data = [row.public() for row in result] if isinstance(result, list) else result.public()
    return printable_json(data)


@functools.singledispatch
def text_lines(result: object) -> list[str]:
    """A result of the admin controller as the lines the operator commands print."""
    raise TypeError(f"no text form for {type(result).__name__}")


@text_lines.register
def _list_lines(rows: list) -> list[str]:
    return [line for row in rows for line in text_lines(row)]


@text_lines.register
def room_lines(room: RoomInfo) -> list[str]:
    """``general  3 members  120 messages  Talk``."""
    topic = f"  {printable(room.topic)}" if room.topic else ""
    return [f"{room.name}  {room.members} members  {room.messages} messages{topic}"]


@text_lines.register
def user_lines(user: UserInfo) -> list[str]:
    """``alice  created 2025-01-02T03:04:05+00:00  2 sessions[  disabled][  admin]``."""
    # The ``created`` of --json, so that both forms show the same moment.
    state = "  disabled" if user.disabled else ""
    state += "  admin" if user.role == "admin" else ""
    created = user.public()["created"]
    return [f"{user.name}  created {created}  {user.sessions} sessions{state}"]


@text_lines.register
def audit_lines(entry: AuditRecord) -> list[str]:
    """``2026-12-05T10:00:00+00:00  alice  ban  bob  in general  (3600 s)``."""
    line = f"{entry.public()['created']}  {printable(entry.actor)}  {entry.action}"
    if entry.target:
        line += f"  {printable(entry.target)}"
    if entry.room:
        line += f"  in {printable(entry.room)}"
    if entry.detail:
        line += f"  ({printable(entry.detail)})"
    return [line]


@text_lines.register
def history_lines(export: HistoryExport) -> list[str]:
    """One ``id  time  user: text`` line a message (UTC, control characters escaped).

    A deleted message shows ``[message deleted]`` in place of its text, a reply
    starts with ``↳ reply to #<id>``, an edited one ends with ``(edited <ISO time>)``
    and reactions follow as ``[<emoji> <count>]`` (issue 12, SPEC §5).
    """
    return [
        "{}  {}  {}: {}".format(
            m["id"],
            datetime.fromtimestamp(m["ts"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            m["user"],
            _message_text(m),
        )
        for m in export.messages
    ]


def _message_text(message: dict) -> str:
    """The text part of a history line: the text with its changes, escaped."""
    if message.get("deleted"):
        return "[message deleted]"
    text = printable(message["text"])
    reply_to = message.get("reply_to")
    if isinstance(reply_to, dict) and "id" in reply_to:
        text = f"↳ reply to #{printable(str(reply_to['id']))}  {text}"
    edited = message.get("edited")
    if isinstance(edited, int | float):
        moment = datetime.fromtimestamp(edited, timezone.utc).isoformat(timespec="seconds")
        text += f" (edited {moment})"
    reactions = message.get("reactions") or {}
    if reactions:
        chips = " ".join(f"[{printable(emoji)} {len(users)}]" for emoji, users in reactions.items())
        text += f"  {chips}"
    return text


@text_lines.register
def stats_lines(stats: Stats) -> list[str]:
    """One ``what: count`` line each."""
    clients = "no server running" if stats.connected_clients is None else stats.connected_clients
    return [
        f"rooms: {stats.rooms}",
        f"users: {stats.users}",
        f"messages retained: {stats.messages}",
        f"serving processes: {stats.processes}",
        f"connected clients: {clients}",
        f"files: {stats.files} ({stats.file_bytes} bytes)",
    ]


@text_lines.register
def gc_lines(report: GcReport) -> list[str]:
    """What ``chatroom files gc`` removed, one line each."""
    return [
        f"files removed: {report.files}",
        f"stored objects removed: {report.objects}",
        f"stale temp files removed: {report.temp_files}",
    ]


@text_lines.register
def invite_lines(invite: InviteInfo) -> list[str]:
    """``#3  Ab1x…  0 of 1 used  expires 2026-12-12T10:00:00+00:00  by alice  active``."""
    data = invite.public()
    return [
        f"#{invite.id}  {invite.prefix}…  {invite.used} of {invite.uses} used  "
        f"expires {data['expires']}  by {printable(invite.created_by)}  {invite.state}"
    ]
