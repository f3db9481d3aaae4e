"""The Redis message repository: store, trim, publish and read back room history.

Each message is stored as the exact bytes of its ``message`` frame, so it is
JSON-encoded once, by the process that accepted it, and every process relays
those same bytes to its sockets.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys

#: How long a ``client_id`` is remembered for dedupe: long enough for a laptop
#: that was closed overnight to retry its queued messages.
CLIENT_ID_TTL_SECONDS = 24 * 3600

_MESSAGE_PREFIX = b'{"type":"message",'

# One round trip per send: dedupe, next id, append, trim, publish — atomically.
# KEYS: seq, log, client-id key. ARGV: frame head, frame tail, history size,
# channel, envelope head, client-id ttl, "1" when a client_id was given.
_SEND_SCRIPT = """
if ARGV[7] == '1' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {0, tonumber(prior)} end
end
local id = redis.call('INCR', KEYS[1])
local frame = ARGV[1] .. id .. ARGV[2]
redis.call('RPUSH', KEYS[2], frame)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
if ARGV[7] == '1' then
  redis.call('SET', KEYS[3], id, 'EX', tonumber(ARGV[6]))
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. '\\n\\n' .. frame)
return {1, id}
"""


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

    def decoded(self) -> list[dict]:
        return [orjson.loads(item) for item in self.items]


@dataclass(frozen=True)
class Event:
    """One published event: the room, a message id (0 for non-messages), who must not
    receive it (``exclude_user``, lowercased, or empty) and the frame bytes."""

    room: str
    message_id: int
    exclude_user: str
    frame: bytes


def encode_envelope(room: str, message_id: int, exclude_user: str, frame: bytes) -> bytes:
    """The pub/sub payload: three header lines (room, id, excluded user), then the frame."""
    return f"{room}\n{message_id or ''}\n{exclude_user}\n".encode() + frame


def decode_envelope(payload: bytes) -> Event:
    room, message_id, exclude_user, frame = payload.split(b"\n", 3)
    return Event(room.decode(), int(message_id or 0), exclude_user.decode(), frame)


def history_item(frame: bytes) -> bytes:
    """A stored ``message`` frame without its ``type`` field: an item of ``joined.messages``."""
    return b"{" + frame[len(_MESSAGE_PREFIX) :]


class MessageRepository:
    """Owns the room histories and the event channel in Redis."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, history_size: int) -> None:
        self._redis = redis
        self._keys = keys
        self._history_size = history_size
        self._send = redis.register_script(_SEND_SCRIPT)

    @property
    def history_size(self) -> int:
        return self._history_size

    async def append(
        self, room: str, user: str, text: str, client_id: str | None = None
    ) -> StoredMessage:
        """Store a message and publish it, in one round trip.

        A ``client_id`` the same user already used in this room returns the
        original id with ``created=False`` and stores nothing.
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
        cid_key = keys.client_id(room, user.lower(), client_id or "")
        created, message_id = await self._send(
            keys=[keys.seq(room), keys.log(room), cid_key],
            args=[
                head,
                tail,
                self._history_size,
                keys.events(),
                f"{room}\n".encode(),
                CLIENT_ID_TTL_SECONDS,
                "1" if client_id is not None else "0",
            ],
        )
        return StoredMessage(int(message_id), bool(created))

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
            pipe.lrange(self._keys.log(room), 0, -1)
            seq, entries = await pipe.execute()
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
                yield decode_envelope(reply["data"])

    async def ping(self) -> None:
        await self._redis.ping()
