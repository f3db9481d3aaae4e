"""Unit tests of ``timeline``: the server-rendered message list's day rows, the "new
messages" divider and the grouping of one author's consecutive messages."""

from __future__ import annotations

import time as clock
from datetime import datetime, timezone

import pytest

from chatroom.views.timeline import GROUP_SECONDS, timeline

#: 2024-03-01 23:50:00 UTC: ten minutes before a day boundary.
T = datetime(2024, 3, 1, 23, 50, tzinfo=timezone.utc).timestamp()
ME = "alice"


def msg(id: int, user: str, ts: float | str) -> dict:
    return {"type": "message", "room": "lobby", "id": id, "user": user, "text": f"m{id}", "ts": ts}


def shape(rows) -> list[str]:
    """Rows as short strings: ``day 2024-03-01``, ``new``, ``3 bob cont last``."""
    out = []
    for row in rows:
        if row.kind == "message":
            flags = (" cont" if row.cont else "") + (" last" if row.last else "")
            out.append(f"{row.message['id']} {row.message['user']}{flags}")
        elif row.kind == "day":
            out.append(f"day {row.day}")
        else:
            out.append(row.kind)
    return out


@pytest.mark.parametrize(
    ("messages", "first_unread", "rows"),
    [
        ([], None, []),
        ([], 1, []),
        ([msg(1, "bob", T)], None, ["day 2024-03-01", "1 bob last"]),
        # One author within GROUP_SECONDS: grouped; another author starts a new group.
        (
            [
                msg(1, "bob", T),
                msg(2, "bob", T + 60),
                msg(3, "carol", T + 61),
                msg(4, "bob", T + 62),
            ],
            None,
            ["day 2024-03-01", "1 bob", "2 bob cont", "3 carol", "4 bob last"],
        ),
        # The window is measured from the previous message, and is strict.
        (
            [
                msg(1, "bob", T - 400),
                msg(2, "bob", T - 400 + GROUP_SECONDS - 0.001),
                msg(3, "bob", T - 400 + 2 * GROUP_SECONDS - 0.001),
            ],
            None,
            ["day 2024-03-01", "1 bob", "2 bob cont", "3 bob last"],
        ),
        # A new UTC day: a day row, and no grouping across it even a minute apart.
        (
            [msg(1, "bob", T + 540), msg(2, "bob", T + 600), msg(3, "bob", T + 601)],
            None,
            ["day 2024-03-01", "1 bob", "day 2024-03-02", "2 bob", "3 bob cont last"],
        ),
        # Several days apart: one day row each, none for the days between.
        (
            [msg(1, "bob", T), msg(2, "bob", T + 3 * 86400)],
            None,
            ["day 2024-03-01", "1 bob", "day 2024-03-04", "2 bob last"],
        ),
        # The divider goes above the first unread message, and breaks a group.
        (
            [msg(1, "bob", T), msg(2, "bob", T + 1), msg(3, "bob", T + 2)],
            2,
            ["day 2024-03-01", "1 bob", "new", "2 bob", "3 bob cont last"],
        ),
        # ... but never above the reader's own message: the next one by someone else.
        (
            [msg(1, "bob", T), msg(2, ME, T + 1), msg(3, ME, T + 2), msg(4, "bob", T + 3)],
            2,
            ["day 2024-03-01", "1 bob", f"2 {ME}", f"3 {ME} cont", "new", "4 bob last"],
        ),
        ([msg(1, ME, T), msg(2, ME, T + 1)], 1, ["day 2024-03-01", f"1 {ME}", f"2 {ME} cont last"]),
        # Everything unread (a marker before the retained history): below the day row.
        (
            [msg(5, "bob", T), msg(6, "bob", T + 1)],
            0,
            ["day 2024-03-01", "new", "5 bob", "6 bob cont last"],
        ),
        # Nothing unread, or a marker past the end: no divider.
        ([msg(1, "bob", T)], None, ["day 2024-03-01", "1 bob last"]),
        ([msg(1, "bob", T)], 2, ["day 2024-03-01", "1 bob last"]),
        # A divider that falls on a new day comes after its day row.
        (
            [msg(1, "bob", T), msg(2, "bob", T + 700)],
            2,
            ["day 2024-03-01", "1 bob", "day 2024-03-02", "new", "2 bob last"],
        ),
        # Only one divider, whatever follows.
        (
            [msg(1, "bob", T), msg(2, "carol", T + 1), msg(3, "bob", T + 2)],
            1,
            ["day 2024-03-01", "new", "1 bob", "2 carol", "3 bob last"],
        ),
        # Ids need not start at 1 or be contiguous (history is trimmed).
        (
            [msg(41, "bob", T), msg(44, "bob", T + 1)],
            43,
            ["day 2024-03-01", "41 bob", "new", "44 bob last"],
        ),
        # Clocks of two hosts a little apart: a message "earlier" than the one before it.
        (
            [msg(1, "bob", T), msg(2, "bob", T - 2)],
            None,
            ["day 2024-03-01", "1 bob", "2 bob cont last"],
        ),
    ],
)
def test_rows(messages: list[dict], first_unread: int | None, rows: list[str]) -> None:
    assert shape(timeline(messages, first_unread, ME)) == rows


def test_the_author_comparison_is_exact() -> None:
    """``me`` is the account's display name, as the server stores it on each message."""
    rows = timeline([msg(1, "Alice", T), msg(2, "bob", T + 1)], 1, "alice")
    assert shape(rows) == ["day 2024-03-01", "new", "1 Alice", "2 bob last"]


@pytest.fixture
def far_time_zone(monkeypatch: pytest.MonkeyPatch):
    """The process in UTC+14, so that any use of local time shows."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    clock.tzset()
    yield
    monkeypatch.undo()
    clock.tzset()


@pytest.mark.usefixtures("far_time_zone")
@pytest.mark.parametrize(
    ("ts", "day", "time", "iso"),
    [
        (0, "1970-01-01", "00:00", "1970-01-01T00:00:00Z"),
        ("0", "1970-01-01", "00:00", "1970-01-01T00:00:00Z"),
        (T, "2024-03-01", "23:50", "2024-03-01T23:50:00Z"),
        (str(T + 0.25), "2024-03-01", "23:50", "2024-03-01T23:50:00.250000Z"),
        (T + 599.999999, "2024-03-01", "23:59", "2024-03-01T23:59:59.999999Z"),
        (T + 600, "2024-03-02", "00:00", "2024-03-02T00:00:00Z"),
        (-86400, "1969-12-31", "00:00", "1969-12-31T00:00:00Z"),
        ("4102444800", "2100-01-01", "00:00", "2100-01-01T00:00:00Z"),
    ],
)
def test_times_are_utc(ts: float | str, day: str, time: str, iso: str) -> None:
    """Times are rendered in UTC (chat.js localises them from ``iso``), whatever the
    server's time zone; ``ts`` may be a number or the string Redis hands back."""
    day_row, row = timeline([msg(1, "bob", ts)], None, ME)
    assert (day_row.kind, day_row.day) == ("day", day)
    assert (row.kind, row.day, row.time, row.iso) == ("message", "", time, iso)


def test_rows_carry_the_message_itself() -> None:
    messages = [msg(1, "bob", T), msg(2, "carol", T + 1)]
    rows = [row for row in timeline(messages, None, ME) if row.kind == "message"]
    assert [row.message for row in rows] == messages
    assert all(row.message is m for row, m in zip(rows, messages, strict=True))


def test_a_long_history_has_one_divider_and_one_last_row() -> None:
    messages = [msg(i, "bob" if i % 3 else "carol", T + i * 100) for i in range(1, 5001)]
    rows = timeline(messages, 4000, ME)
    assert sum(row.kind == "message" for row in rows) == 5000
    assert sum(row.kind == "new" for row in rows) == 1
    assert [row.last for row in rows].count(True) == 1 and rows[-1].last
