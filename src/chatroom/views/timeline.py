"""The server-rendered message list as rows: day separators, the "new messages"
divider and author grouping (static/js/timeline.js does the same live)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

#: Consecutive messages of one author closer than this share one header.
GROUP_SECONDS = 5 * 60


@dataclass(frozen=True)
class Row:
    """One line of the server-rendered message list (times in UTC; chat.js localises)."""

    kind: str  # "day", "new" or "message"
    day: str = ""
    message: dict | None = None
    time: str = ""
    iso: str = ""
    cont: bool = False
    last: bool = False
    edited: str = ""  # SPEC §5: when the message was last edited (UTC), for its tooltip


#: The row that renders ``_message.html`` with empty fields, for the ``<template>``
#: that static/js/messages.js clones; its one empty reaction chip is the prototype
#: static/js/reactions.js copies.
BLANK_MESSAGE = Row(
    "message", message={"id": "", "user": "", "ts": "", "text": "", "reactions": {"": []}}
)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), timezone.utc)


def timeline(messages: list[dict], first_unread: int | None, me: str) -> list[Row]:
    """Messages with day separators, the "new messages" divider and author grouping.

    The divider goes above the first unread message someone else wrote."""
    rows: list[Row] = []
    previous: dict | None = None
    previous_day = ""
    divider_shown = False
    for m in messages:
        when = _utc(m["ts"])
        day = when.strftime("%Y-%m-%d")
        if day != previous_day:
            rows.append(Row("day", day=day))
        divider = (
            not divider_shown
            and first_unread is not None
            and m["id"] >= first_unread
            and m["user"] != me
        )
        if divider:
            rows.append(Row("new"))
            divider_shown = True
        cont = (
            previous is not None
            and not divider
            and day == previous_day
            and previous["user"] == m["user"]
            and float(m["ts"]) - float(previous["ts"]) < GROUP_SECONDS
        )
        rows.append(
            Row(
                "message",
                message=m,
                time=when.strftime("%H:%M"),
                iso=when.isoformat().replace("+00:00", "Z"),
                cont=cont,
                last=m is messages[-1],
                edited=_utc(m["edited"]).strftime("%Y-%m-%d %H:%M UTC") if m.get("edited") else "",
            )
        )
        previous, previous_day = m, day
    return rows
