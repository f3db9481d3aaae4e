"""The Redis message repository: store, trim, publish and read back room history.

Each message is stored as the exact bytes of its ``message`` frame, so it is
JSON-encoded once, by the process that accepted it, and every process relays
those same bytes to its sockets. The send script publishes each stored message
on the ``EventBus`` (``models.events``) in the same round trip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

from chatroom.models.epochs import EpochRepository, epoch_event, new_epoch
from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.replication import node_calls
from chatroom.models.room_rules import NONE, RuleRefused, RulesCheck, RuleStatus
from chatroom.models.send_script import SEND_SCRIPT, AppendStatus

#: How long a ``client_id`` is remembered for dedupe: long enough for a laptop
#: that was closed overnight to retry its queued messages.
CLIENT_ID_TTL_SECONDS = 24 * 3600

#: How long a server-made retry key (for a send without client_id) is remembered.
RETRY_KEY_TTL_SECONDS = 60

_MESSAGE_PREFIX = b'{"type":"message",'


class EpochFloorNeeded(Exception):
    """The room has no epoch (new, or Redis lost it): send again with its floor."""


class FsyncTimeout(Exception):
    """--durability strict: the message was stored but not fsynced (or replicated) in time."""


#: How long a send waits for its fsync / replica under --durability strict.
DURABILITY_WAIT_MS = 1000


@dataclass(frozen=True)
class DurabilityWait:
    """--durability strict: what each send waits for, in the same pipeline (one round
    trip) and on the same connection as the send script.

    ``waitaof``: ``WAITAOF 1 <replicas>`` (Redis >= 7.2: the master's AOF fsynced,
    and that many replicas' too). Else ``WAIT <replicas>`` (that many replicas
    received it; the master fsyncs every write itself, ``appendfsync always``).
    """

    replicas: int = 0
    waitaof: bool = True

    def command(self) -> tuple:
        if self.waitaof:
            return ("WAITAOF", 1, self.replicas, DURABILITY_WAIT_MS)
        return ("WAIT", self.replicas, DURABILITY_WAIT_MS)

    def satisfied(self, reply: object) -> bool:
        if self.waitaof:
            local, replicas = reply  # type: ignore[misc]
            return int(local) >= 1 and int(replicas) >= self.replicas
        return int(reply) >= self.replicas  # type: ignore[arg-type]


@dataclass(frozen=True)
class StoredMessage:
    """The outcome of a send: the message id, and False when it was a deduplicated retry."""

    id: int
    created: bool


@dataclass(frozen=True)
class HistoryPage:
    """Retained messages of a room as JSON objects (no ``type``), oldest first.

    ``missing`` counts the requested messages that are no longer retained.
    """

    room: str
    items: list[bytes]
    last_id: int
    missing: int
    #: [issue 12] the room's change counter when the page was read (SPEC §5).
    rev: int | None = None
    #: [issue 12] with ``since_rev``: retained messages before ``items`` changed since.
    updates: list[bytes] = field(default_factory=list)
    #: [SPEC §8] the room's epoch when the page was read (None: it has none yet).
    epoch: str | None = None

    @property
    def gap(self) -> bool:
        return self.missing > 0

    @property
    def first_id(self) -> int:
        """The id of ``items[0]`` (ids are consecutive); ``last_id + 1`` when empty."""
        return self.last_id - len(self.items) + 1

    def after(self, message_id: int) -> tuple[list[bytes], int]:
        """The items with id > ``message_id``, and how many such are no longer retained."""
        first = self.first_id
        missing = max(0, first - 1 - message_id)
        return self.items[max(0, message_id + 1 - first) :], missing

    def decoded(self) -> list[dict]:
        return [orjson.loads(item) for item in self.items]


def history_item(frame: bytes) -> bytes:
    """A stored ``message`` frame without its ``type`` field: an item of ``joined.messages``."""
    return b"{" + frame[len(_MESSAGE_PREFIX) :]


def message_frame(item: bytes) -> bytes:
    """The ``message`` frame of a history item (the inverse of ``history_item``)."""
    return _MESSAGE_PREFIX + item[1:]


class MessageRepository:
    """Owns the room histories in Redis; publishes what it stores on ``events``.

    ``events`` defaults to the bus on the same Redis and keys.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        history_size: int,
        wait_for_fsync: bool | DurabilityWait | None = False,
        events: EventBus | None = None,
        archive_backlog: int = 0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.events = events or EventBus(redis, keys)
        self._history_size = history_size
        # [archive] the most messages a room keeps in Redis while the archive is behind.
        self._archive_backlog = archive_backlog
        # --durability strict on a Redis with WAITAOF, or with replicas: the send and
        # the wait for its fsync (and replica) go in one pipeline, still one round trip.
        if wait_for_fsync is True:
            wait_for_fsync = DurabilityWait()
        self._durability = wait_for_fsync or None
        self._send = redis.register_script(self.events.script(SEND_SCRIPT))
        self._calls = node_calls(redis)
        #: [SPEC §8] the rooms' epochs.
        self.epochs = EpochRepository(redis, keys, self.events)

    @property
    def history_size(self) -> int:
        """How many messages of a room ``history`` returns (the newest)."""
        return self._history_size

    async def append(
        self,
        room: str,
        user: str,
        text: str,
        client_id: str | None = None,
        rate: SendRate | None = None,
        retry_key: str | None = None,
        files: list[dict] | None = None,
        reply_to: dict | None = None,
        mentions: list[str] | None = None,
        mention_keys: list[str] | None = None,
        floor: int = 0,
        floor_checked: bool = True,
        rules: RulesCheck | None = None,
    ) -> StoredMessage:
        """Store a message and publish it, in one round trip.

        ``files``: the file objects the message carries (issue 15, SPEC §9).
        ``reply_to``, ``mentions`` (issue 12, SPEC §5): the item's fields; the
        message's id goes into each of ``mention_keys`` (the mentioned users' sets).

        A ``client_id`` the same user already used in this room returns the
        original id with ``created=False`` and stores nothing. With ``rate``, the
        user's bucket for this room (shared by every process) must hold a token,
        else ``SendRateExceeded``; a deduplicated retry takes no token. A send
        without ``client_id`` may carry a server-made ``retry_key`` instead, so
        the server's own retry of it is deduplicated the same way (briefly).

        [issue 13] ``rules``: the room's rules to check in the same step;
        ``RuleRefused`` when they refuse the message (nothing stored).
        [SPEC §8] ``floor``: the highest id known to be used in the room (what this
        process saw; with ``floor_checked``, the archive's too). A room whose counter
        is below the floor starts a new epoch first (``models.epochs``). A room
        without an epoch needs a ``floor_checked`` floor (what one process saw may lag
        behind the others): without one, nothing is stored and ``EpochFloorNeeded``
        is raised.
        """
        head = _MESSAGE_PREFIX + b'"room":' + orjson.dumps(room) + b',"id":'
        tail = b',"user":%b,"text":%b,"ts":%b' % (
            orjson.dumps(user),
            orjson.dumps(text),
            orjson.dumps(round(time.time(), 6)),
        )
        if client_id is not None:
            tail += b',"client_id":' + orjson.dumps(client_id)
        if files:  # issue 15: the message carries its file objects
            tail += b',"files":' + orjson.dumps(files)
        if reply_to is not None:  # issue 12
            tail += b',"reply_to":' + orjson.dumps(reply_to)
        if mentions:
            tail += b',"mentions":' + orjson.dumps(mentions)
        keys = self._keys
        if client_id is not None:
            dedupe, ttl = client_id, CLIENT_ID_TTL_SECONDS
        else:
            # "~" + 32 hex digits: a key no client can guess.
            dedupe, ttl = ("~" + retry_key if retry_key else None), RETRY_KEY_TTL_SECONDS
        cid_key = keys.client_id(room, user.lower(), dedupe or "")
        script_keys = [
            *(keys.seq(room), keys.log(room), cid_key, keys.send_rate(room, user.lower())),
            keys.archived(room),
            keys.rev(room),
            keys.changes(room),
            keys.epoch(room),
            keys.orphans(room),
            rules.key if rules is not None else keys.rules(room, 0),
            keys.stale_reads(room),
            *(mention_keys or ()),
        ]
        epoch = new_epoch()
        before_id, after_id = self.events.message_envelope(room)
        args = [
            head,
            tail,
            self._history_size,
            self.events.room_channel(room),
            before_id,
            after_id,
            ttl,
            "1" if dedupe is not None else "0",
            rate.burst if rate else 0,
            rate.per_second if rate else 0,
            self._archive_backlog,
            floor,
            epoch,
            epoch_event(room, epoch),
            "1" if floor_checked else "0",
            *(rules.args() if rules is not None else ["", NONE, "0"]),
        ]
        if self._durability is not None:
            (status, value), waited = await self._calls.call_then(
                keys.seq(room), self._send, script_keys, args, *self._durability.command()
            )
            stored = status in (AppendStatus.STORED, AppendStatus.DUPLICATE)
            if stored and not self._durability.satisfied(waited):
                # A retry (DUPLICATE) too: its original may be the write that was not safe.
                raise FsyncTimeout(f"message {value} of {room} not safely stored within 1s")
        else:
            status, value = await self._send(keys=script_keys, args=args)
        if status == AppendStatus.RATE_LIMITED:
            raise SendRateExceeded(int(value) / 1000)
        if status == AppendStatus.REFUSED:
            raise RuleRefused(RuleStatus(int(value)))
        if status == AppendStatus.NEED_FLOOR:
            raise EpochFloorNeeded(room)
        return StoredMessage(int(value), status == AppendStatus.STORED)

    async def last_id(self, room: str) -> int:
        return int(await self._redis.get(self._keys.seq(room)) or 0)

    async def last_ids(self, rooms: list[str]) -> dict[str, int]:
        """The newest message id of each room (0 for an empty room)."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.get(self._keys.seq(room))
            values = await pipe.execute()
        return {room: int(v or 0) for room, v in zip(rooms, values, strict=True)}

    async def heads(self, rooms: list[str]) -> dict[str, tuple[int, str | None]]:
        """[SPEC §8] Each room's newest id (0 for none) and epoch (None for none yet)."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.get(self._keys.seq(room))
                pipe.get(self._keys.epoch(room))
            values = await pipe.execute()
        return {
            room: (int(seq or 0), epoch.decode() if epoch else None)
            for room, seq, epoch in zip(rooms, values[0::2], values[1::2], strict=True)
        }

    async def history(
        self, room: str, since: int | None = None, since_rev: int | None = None
    ) -> HistoryPage:
        """The retained messages (all, or those with id > ``since``) and how many are gone.

        [issue 12] With ``since_rev``, also ``updates``: the retained messages it does
        not return whose last edit, delete or reaction has a rev > ``since_rev``.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._keys.seq(room))
            # [archive] the log may hold a backlog for the archive: read only the newest.
            pipe.lrange(self._keys.log(room), -self._history_size, -1)
            pipe.get(self._keys.rev(room))
            pipe.get(self._keys.epoch(room))
            if since_rev is not None:
                pipe.zrangebyscore(self._keys.changes(room), f"({since_rev}", "+inf")
            seq, entries, rev, epoch, *changed = await pipe.execute()
        # Trimming happens on append; a smaller --history-size applies at once.
        entries = entries[-self._history_size :]
        last_id = int(seq or 0)
        oldest = last_id - len(entries) + 1
        if since is None:
            selected, missing = entries, 0
        elif since >= last_id:
            selected, missing = [], 0
        else:
            missing = max(0, oldest - 1 - since)
            selected = entries[max(0, since + 1 - oldest) :]
        updates: list[bytes] = []
        if changed:
            before = len(entries) - len(selected)  # the retained ones not in ``selected``
            indexes = sorted(int(i) - oldest for i in changed[0])
            updates = [history_item(entries[i]) for i in indexes if 0 <= i < before]
        return HistoryPage(
            room,
            [history_item(e) for e in selected],
            last_id,
            missing,
            int(rev or 0),
            updates,
            epoch.decode() if epoch else None,
        )

    async def retained_counts(self, rooms: list[str]) -> dict[str, int]:
        """How many messages each room's history holds (the length of its log)."""
        if not rooms:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.llen(self._keys.log(room))
            values = await pipe.execute()
        return {room: int(n) for room, n in zip(rooms, values, strict=True)}

    async def delete_room(self, room: str) -> int:
        """Delete every key of the room: history, counter, dedupe, rate and presence keys.

        Returns how many retained messages were dropped. A room created again
        under the same name starts from id 1.
        """
        keys = self._keys
        retained = int(await self._redis.llen(keys.log(room)))
        found = [key async for key in self._redis.scan_iter(match=keys.room_keys(room), count=500)]
        for start in range(0, len(found), 500):
            await self._redis.unlink(*found[start : start + 500])
        return retained

    async def ping(self) -> None:
        await self._redis.ping()
