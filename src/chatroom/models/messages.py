"""The Redis message repository: store, trim, publish and read back room history.

Each message is stored as the exact bytes of its ``message`` frame, so it is
JSON-encoded once, by the process that accepted it, and every process relays
those same bytes to its sockets.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys
from chatroom.models.token_bucket import TAKE_TOKEN_LUA

log = logging.getLogger(__name__)

#: How long a ``client_id`` is remembered for dedupe: long enough for a laptop
#: that was closed overnight to retry its queued messages.
CLIENT_ID_TTL_SECONDS = 24 * 3600

#: How long a server-made retry key (for a send without client_id) is remembered.
RETRY_KEY_TTL_SECONDS = 60

_MESSAGE_PREFIX = b'{"type":"message",'

# One round trip per send: dedupe, rate limit, next id, append, trim, publish —
# atomically. KEYS: seq, log, client-id key, rate bucket, archive watermark (all
# tagged {room}). ARGV: frame head, frame tail, history size, channel, envelope
# head, client-id ttl, "1" when a client_id was given, bucket size, bucket refill
# per second, archive backlog cap.
# Returns {1, id} stored, {0, id} a retry of id, {2, ms} rate limited.
_SEND_SCRIPT = (
    TAKE_TOKEN_LUA
    + """
if ARGV[7] == '1' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {0, tonumber(prior)} end
end
local burst, rate = tonumber(ARGV[8]), tonumber(ARGV[9])
if burst > 0 then
  local wait = take_token(KEYS[4], burst, rate, 1)
  if wait > 0 then return {2, wait} end
end
local id = redis.call('INCR', KEYS[1])
local frame = ARGV[1] .. id .. ARGV[2]
redis.call('RPUSH', KEYS[2], frame)
-- [archive] keep every message above the archive's watermark (KEYS[5]), at most
-- ARGV[10] of them (the backlog cap; 0: no cap); see docs/archive.md.
local keep = math.max(tonumber(ARGV[3]), id - tonumber(redis.call('GET', KEYS[5]) or '0'))
local cap = tonumber(ARGV[10])
if cap > 0 and keep > cap then keep = cap end
redis.call('LTRIM', KEYS[2], -keep, -1)
if ARGV[7] == '1' then
  redis.call('SET', KEYS[3], id, 'EX', tonumber(ARGV[6]))
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. '\\n\\n' .. frame)
return {1, id}
"""
)


class SendRateExceeded(Exception):
    """The user's token bucket for this room is empty; nothing was stored."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class FsyncTimeout(Exception):
    """--durability strict: the message was stored but not fsynced in time."""


@dataclass(frozen=True)
class SendRate:
    """A token bucket: ``burst`` sends at once, refilled at ``per_second``."""

    burst: int
    per_second: float


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


#: The envelope room of control events: no room has an empty name, so their frames
#: never reach a socket, and a process that does not know them ignores them.
CONTROL_ROOM = ""


@dataclass(frozen=True)
class Event:
    """One published event: the room, a message id (0 for non-messages), who must not
    receive it (``exclude_user``, lowercased, or empty) and the frame bytes."""

    room: str
    message_id: int
    exclude_user: str
    frame: bytes

    def control(self) -> dict | None:
        """The payload of a control event (see ``publish_control``); None for any other event."""
        if self.room != CONTROL_ROOM:
            return None
        try:
            payload = orjson.loads(self.frame)
        except orjson.JSONDecodeError:
            return {}
        return payload if isinstance(payload, dict) else {}


def encode_envelope(room: str, message_id: int, exclude_user: str, frame: bytes) -> bytes:
    """The pub/sub payload: three header lines (room, id, excluded user), then the frame."""
    return f"{room}\n{message_id or ''}\n{exclude_user}\n".encode() + frame


def decode_envelope(payload: bytes) -> Event:
    room, message_id, exclude_user, frame = payload.split(b"\n", 3)
    return Event(room.decode(), int(message_id or 0), exclude_user.decode(), frame)


def history_item(frame: bytes) -> bytes:
    """A stored ``message`` frame without its ``type`` field: an item of ``joined.messages``."""
    return b"{" + frame[len(_MESSAGE_PREFIX) :]


def message_frame(item: bytes) -> bytes:
    """The ``message`` frame of a history item (the inverse of ``history_item``)."""
    return _MESSAGE_PREFIX + item[1:]


class MessageRepository:
    """Owns the room histories and the event channel in Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        history_size: int,
        wait_for_fsync: bool = False,
        archive_backlog: int = 0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._history_size = history_size
        # [archive] the most messages a room keeps in Redis while the archive is behind.
        self._archive_backlog = archive_backlog
        # --durability strict on a Redis with WAITAOF: the send and the wait for
        # its fsync go in one pipeline, still one round trip.
        self._wait_for_fsync = wait_for_fsync
        self._send = redis.register_script(_SEND_SCRIPT)

    @property
    def history_size(self) -> int:
        return self._history_size

    async def append(
        self,
        room: str,
        user: str,
        text: str,
        client_id: str | None = None,
        rate: SendRate | None = None,
        retry_key: str | None = None,
    ) -> StoredMessage:
        """Store a message and publish it, in one round trip.

        A ``client_id`` the same user already used in this room returns the
        original id with ``created=False`` and stores nothing. With ``rate``, the
        user's bucket for this room (shared by every process) must hold a token,
        else ``SendRateExceeded``; a deduplicated retry takes no token. A send
        without ``client_id`` may carry a server-made ``retry_key`` instead, so
        the server's own retry of it is deduplicated the same way (briefly).
        """
        head = _MESSAGE_PREFIX + b'"room":' + orjson.dumps(room) + b',"id":'
        tail = b',"user":%b,"text":%b,"ts":%b' % (
            orjson.dumps(user),
            orjson.dumps(text),
            orjson.dumps(round(time.time(), 6)),
        )
        if client_id is not None:
            tail += b',"client_id":' + orjson.dumps(client_id)
        tail += b"}"
        keys = self._keys
        if client_id is not None:
            dedupe, ttl = client_id, CLIENT_ID_TTL_SECONDS
        else:
            # "~" + 32 hex digits: a key no client can guess.
            dedupe, ttl = ("~" + retry_key if retry_key else None), RETRY_KEY_TTL_SECONDS
        cid_key = keys.client_id(room, user.lower(), dedupe or "")
        script_keys = [
            *(keys.seq(room), keys.log(room), cid_key, keys.send_rate(room, user.lower())),
            keys.archived(room),  # [archive]
        ]
        args = [
            head,
            tail,
            self._history_size,
            keys.events(),
            f"{room}\n".encode(),
            ttl,
            "1" if dedupe is not None else "0",
            rate.burst if rate else 0,
            rate.per_second if rate else 0,
            self._archive_backlog,  # [archive]
        ]
        if self._wait_for_fsync:
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._send(keys=script_keys, args=args, client=pipe)
                pipe.execute_command("WAITAOF", 1, 0, 1000)
                (status, value), (fsynced_local, _) = await pipe.execute()
            if status == 1 and fsynced_local < 1:
                raise FsyncTimeout(f"message {value} of {room} not fsynced within 1s")
        else:
            status, value = await self._send(keys=script_keys, args=args)
        if status == 2:
            raise SendRateExceeded(int(value) / 1000)
        return StoredMessage(int(value), status == 1)

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

    async def history(self, room: str, since: int | None = None) -> HistoryPage:
        """The retained messages (all, or those with id > ``since``) and how many are gone."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._keys.seq(room))
            # [archive] the log may hold a backlog for the archive: read only the newest.
            pipe.lrange(self._keys.log(room), -self._history_size, -1)
            seq, entries = await pipe.execute()
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
        return HistoryPage(room, [history_item(e) for e in selected], last_id, missing)

    async def publish(self, room: str, frame: bytes, exclude_user: str = "") -> None:
        """Publish a non-message event (presence, typing) to every process."""
        envelope = encode_envelope(room, 0, exclude_user.lower(), frame)
        await self._redis.publish(self._keys.events(), envelope)

    async def publish_control(self, action: str, **fields: object) -> None:
        """Tell every process about an operator's change (``room_deleted``, ``user_disabled``).

        Sent as ``{"type": "control", "action": ..., **fields}`` in the envelope of
        ``CONTROL_ROOM``; ``ChatController`` applies it and never relays it to sockets.
        """
        frame = orjson.dumps({"type": "control", "action": action, **fields})
        await self._redis.publish(self._keys.events(), encode_envelope(CONTROL_ROOM, 0, "", frame))

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
        await self._redis.srem(keys.presence_rooms(), room)
        return retained

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Event]]:
        """Subscribe to the event channel; the yielded iterator runs until the connection fails.

        On entry the subscription is confirmed by Redis, so anything published
        from then on is seen.
        """
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._keys.events())
            while True:
                reply = await pubsub.get_message(timeout=5.0)
                if reply is not None and reply["type"] == "subscribe":
                    break
            yield self._stream(pubsub)
        finally:
            await pubsub.aclose()

    @staticmethod
    async def _stream(pubsub) -> AsyncIterator[Event]:
        while True:
            reply = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
            if reply is not None and reply["type"] == "message":
                try:
                    yield decode_envelope(reply["data"])
                except ValueError:  # not ours: someone else published on our channel
                    log.warning("ignored a malformed event on the channel")

    async def ping(self) -> None:
        await self._redis.ping()
