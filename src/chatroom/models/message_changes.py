"""Edits, deletes and reactions of stored messages in Redis (SPEC §5), and mention counts.

A room's log is a Redis list of ``message`` frames, oldest first, with
consecutive ids, so the message ``id`` is at index ``id - first_id``. A change is
computed in Python from the frame it read, then committed by one script that, in
one atomic step, checks the frame is still the one read (else ``CONFLICT``: read
again and recompute), takes a token from the sender's send bucket, raises the
room's ``rev``, replaces the frame (LSET), records the message's last-change rev
for catch-up (the ``changes`` sorted set), moves its id between the mentioned
users' sets, and publishes the event frame. So concurrent changes from any number
of processes apply one after another, none lost, published in ``rev`` order.
The scripts are in ``models/change_scripts.py``.

A message trimmed from the log but kept in the SQL archive is changed the same
way, with its own script: the new frame goes to a key of its own
(``archived_change``) instead of the log, which is the message's truth until the
SQL archive has the change; then that key keeps, for ``SETTLED_TTL_SECONDS``, the
rev SQL has, so a change computed from a copy of SQL read before that write is
refused as ``STALE`` and read again, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from chatroom.models.change_scripts import (
    ARCHIVED_CHANGE_SCRIPT,
    CHANGE_SCRIPT,
    READ_SCRIPT,
    SETTLE_SCRIPT,
    SETTLED_TTL_SECONDS,
    ChangeStatus,
)
from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.room_rules import NONE, RuleRefused, RulesCheck, RuleStatus


@dataclass(frozen=True)
class StoredFrame:
    """One message as the log holds it: its frame bytes and decoded fields."""

    raw: bytes
    item: dict


@dataclass(frozen=True)
class Change:
    """A change to commit: the new message fields and the event frame (both without
    ``rev``, which the script adds), and the mention sets to add to / remove from."""

    item: dict
    event: dict
    mention_adds: tuple[str, ...] = ()
    mention_removes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArchivedCopy:
    """An archived message as a change was computed from it: the pending frame of an
    earlier change (``raw``), or the SQL copy (``raw`` empty) and the rev it reflects."""

    item: dict
    raw: bytes = b""
    version: int = 0


def _open(frame: dict) -> bytes:
    """The JSON of ``frame`` without its closing brace, for the script to append ``rev``."""
    return orjson.dumps({k: v for k, v in frame.items() if k != "rev"})[:-1]


def with_rev(item: dict, rev: int) -> bytes:
    """The frame a script stores for ``item`` at ``rev`` (``_open`` plus the rev tail)."""
    return _open(item) + b',"rev":%d}' % rev


class MessageChangeRepository:
    """Reads one stored message and commits changes to it; counts unread mentions."""

    def __init__(
        self, redis: aioredis.Redis, keys: RedisKeys, history_size: int, events: EventBus
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._history_size = history_size
        self._events = events
        self._read = redis.register_script(READ_SCRIPT)
        self._change = redis.register_script(events.script(CHANGE_SCRIPT))
        self._archived_change = redis.register_script(events.script(ARCHIVED_CHANGE_SCRIPT))
        self._settle = redis.register_script(SETTLE_SCRIPT)

    def mention_key(self, room: str, user_key: str) -> str:
        """The set of ids of the room's messages that mention ``user_key``."""
        return self._keys.mentions(room, user_key)

    async def read(self, room: str, message_id: int) -> tuple[int, StoredFrame | None]:
        """The room's newest id and the stored message ``message_id`` (None: not in Redis)."""
        keys = self._keys
        seq, raw = await self._read(keys=[keys.seq(room), keys.log(room)], args=[message_id])
        if not raw or not 1 <= message_id <= int(seq):
            return int(seq), None
        return int(seq), StoredFrame(raw, orjson.loads(raw))

    async def commit(
        self,
        room: str,
        user_key: str,
        read: StoredFrame,
        change: Change,
        rate: SendRate,
        rules: RulesCheck | None = None,
    ) -> tuple[ChangeStatus, int]:
        """Commit ``change`` if the message is still ``read``: (status, the new rev).

        ``SendRateExceeded`` when the user's send bucket of the room is empty;
        ``RuleRefused`` when the room's ``rules`` refuse it (issue 13).
        """
        before, after = self._events.message_envelope(room)
        mention_keys = [self.mention_key(room, u) for u in change.mention_adds]
        mention_keys += [self.mention_key(room, u) for u in change.mention_removes]
        status, value = await self._change(
            keys=[*self._script_keys(room, user_key, rules), *mention_keys],
            args=[
                int(change.item["id"]),
                read.raw,
                _open(change.item),
                _open(change.event),
                self._events.room_channel(room),
                before + after,  # an event of no message id: never deduplicated by id
                rate.burst,
                rate.per_second,
                self._history_size,
                len(change.mention_adds),
                *_rules_args(rules),
            ],
        )
        return _outcome(status, value)

    def _script_keys(self, room: str, user_key: str, rules: RulesCheck | None) -> list[str]:
        """The keys both change scripts start with: seq, log, rev, changes, rate bucket,
        the room's rules hash (issue 13)."""
        keys = self._keys
        return [
            keys.seq(room),
            keys.log(room),
            keys.rev(room),
            keys.changes(room),
            keys.send_rate(room, user_key),
            rules.key if rules is not None else keys.rules(room, 0),
        ]

    async def pending_archived(self, room: str, message_id: int) -> bytes | None:
        """The frame of an archived message's change that SQL may not have yet (None:
        SQL's copy is the message)."""
        value = await self._redis.get(self._keys.archived_change(room, message_id))
        return value if value and value.startswith(b"{") else None

    async def commit_archived(
        self,
        room: str,
        user_key: str,
        read: ArchivedCopy,
        change: Change,
        rate: SendRate,
        rules: RulesCheck | None = None,
    ) -> tuple[ChangeStatus, int]:
        """Commit ``change`` of a message only in the archive if it is still ``read``:
        (status, the new rev). No mention sets move: they hold retained messages only."""
        keys = self._keys
        mid = int(change.item["id"])
        before, after = self._events.message_envelope(room)
        status, value = await self._archived_change(
            keys=[*self._script_keys(room, user_key, rules), keys.archived_change(room, mid)],
            args=[
                mid,
                "frame" if read.raw else "sql",
                read.raw or read.version,
                _open(change.item),
                _open(change.event),
                self._events.room_channel(room),
                rate.burst,
                rate.per_second,
                before + after,
                *_rules_args(rules),
            ],
        )
        return _outcome(status, value)

    async def settle_archived(self, room: str, item: dict, rev: int) -> bool:
        """SQL has ``item`` at ``rev``: unless a newer change came meanwhile, its key
        keeps only the rev (for ``SETTLED_TTL_SECONDS``)."""
        key = self._keys.archived_change(room, int(item["id"]))
        frame = with_rev(item, rev)
        return bool(await self._settle(keys=[key], args=[frame, rev, SETTLED_TTL_SECONDS]))

    async def mention_counts(self, user_key: str, read_marks: dict[str, int]) -> dict[str, int]:
        """Per room: how many messages after the read mark mention the user."""
        if not read_marks:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, mark in read_marks.items():
                pipe.zcount(self.mention_key(room, user_key), f"({mark}", "+inf")
            counts = await pipe.execute()
        return {room: int(n) for room, n in zip(read_marks, counts, strict=True)}


def _rules_args(rules: RulesCheck | None) -> list[str]:
    """The rules check's script arguments (none to check: mode ``NONE``)."""
    return rules.args() if rules is not None else ["", NONE, "0"]


def _outcome(status: int, value: int) -> tuple[ChangeStatus, int]:
    """A change script's reply; ``SendRateExceeded`` when the send bucket was empty,
    ``RuleRefused`` when the room's rules refused the change (issue 13)."""
    if status == ChangeStatus.RATE_LIMITED:
        raise SendRateExceeded(int(value) / 1000)
    if status == ChangeStatus.REFUSED:
        raise RuleRefused(RuleStatus(int(value)))
    return ChangeStatus(status), int(value)
