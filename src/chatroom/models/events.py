"""The cross-process event bus: Redis pub/sub between the processes.

Every event travels in one envelope: three header lines (room, message id,
excluded user) and then the frame bytes, relayed to sockets as they are. The
send script (``models.messages``) publishes stored messages itself, inside its
one round trip; it builds the envelope from ``EventBus.message_envelope`` and
publishes on ``EventBus.room_channel``, so the format is written here only.

[issue 17] With one Redis or Sentinel (``--pubsub-channels rooms``, the default)
a room's events go with ``PUBLISH`` on the room's own channel, which only the
processes with a member in the room subscribe to (``models.room_subscriptions``);
with ``--pubsub-channels one`` every event goes on one channel that every process
listens to. [issue 16] In a Cluster (``--cluster-pubsub sharded``, the default) a
room's events go with ``SPUBLISH`` on the room's own shard channel, in its slot
(``models.room_channels``). Control events always go on the one classic channel.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from chatroom.models.keys import RedisKeys
from chatroom.models.pubsub_read import replies

log = logging.getLogger(__name__)

#: What a script's publish looks like; ``EventBus.script`` makes it sharded (issue 16).
_PUBLISH_CALL = "redis.call('PUBLISH',"
_SPUBLISH_CALL = "redis.call('SPUBLISH',"

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


def envelope_header(room: str, exclude_user: str = "") -> tuple[bytes, bytes]:
    """The envelope header around the message id: the bytes before it and after it.

    An envelope is ``before + id + after + frame`` (the id empty when 0).
    """
    return f"{room}\n".encode(), f"\n{exclude_user}\n".encode()


def encode_envelope(room: str, message_id: int, exclude_user: str, frame: bytes) -> bytes:
    """The pub/sub payload: three header lines (room, id, excluded user), then the frame."""
    before, after = envelope_header(room, exclude_user)
    return before + (str(message_id).encode() if message_id else b"") + after + frame


def decode_envelope(payload: bytes) -> Event:
    """The event of a pub/sub payload; ``ValueError`` when it is not an envelope."""
    room, message_id, exclude_user, frame = payload.split(b"\n", 3)
    return Event(room.decode(), int(message_id or 0), exclude_user.decode(), frame)


def received_event(payload: bytes) -> Event | None:
    """The event of a payload read from one of our channels; None (logged) when it is
    not an envelope: someone else published on the channel, and it is skipped."""
    try:
        return decode_envelope(payload)
    except ValueError:
        log.warning("ignored a malformed event on a pub/sub channel")
        return None


class EventBus:
    """Publishes events to every process and delivers them to this one's listener.

    ``sharded`` (issue 16, a Cluster only): rooms' events go on their shard channels.
    ``per_room`` (issue 17, one Redis or Sentinel): rooms' events go on their own
    channels, with ``PUBLISH``; the one channel carries the control events only.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        sharded: bool = False,
        per_room: bool = False,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._channel = keys.events()
        self._access_version = keys.access_version()
        self.sharded = sharded
        #: Whether each room's events have a channel of their own (sharded or not).
        self.per_room = per_room or sharded

    @property
    def redis(self) -> aioredis.Redis:
        """The client the bus publishes with (its subscriptions use it too)."""
        return self._redis

    @property
    def channel(self) -> str:
        """The one channel: every event, or (per room) the control events only."""
        return self._channel

    def room_channel(self, room: str) -> str:
        """The channel ``room``'s events go on (a Lua script that publishes uses this one)."""
        return self._keys.room_events(room) if self.per_room else self._channel

    def script(self, lua: str) -> str:
        """A script that publishes a room's event, as this bus publishes: with
        ``SPUBLISH`` when sharded (chosen once, when the script is registered)."""
        assert _PUBLISH_CALL in lua, "not a publishing script"
        return lua.replace(_PUBLISH_CALL, _SPUBLISH_CALL) if self.sharded else lua

    @staticmethod
    def message_envelope(room: str) -> tuple[bytes, bytes]:
        """What a script puts before and after a stored message's id (nobody excluded)."""
        return envelope_header(room)

    async def publish(self, room: str, frame: bytes, exclude_user: str = "") -> None:
        """Publish a non-message event (presence, typing) to every process."""
        envelope = encode_envelope(room, 0, exclude_user.lower(), frame)
        if self.sharded:
            await self._redis.spublish(self._keys.room_events(room), envelope)
        else:
            await self._redis.publish(self.room_channel(room), envelope)

    async def publish_control(self, action: str, **fields: object) -> None:
        """Tell every process about an operator's change (``room_deleted``, ``user_disabled``).

        Sent as ``{"type": "control", "action": ..., **fields}`` in the envelope of
        ``CONTROL_ROOM``; ``ChatController`` applies it and never relays it to sockets.
        """
        frame = orjson.dumps({"type": "control", "action": action, **fields})
        await self._redis.publish(self._channel, encode_envelope(CONTROL_ROOM, 0, "", frame))

    async def next_access_version(self) -> int:
        """[issue 13] Raise the shared access version (who may use which room changed)."""
        return int(await self._redis.incr(self._access_version))

    async def access_version(self) -> int:
        """[issue 13] The shared access version (0 until the first change)."""
        return int(await self._redis.get(self._access_version) or 0)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Event]]:
        """Subscribe to the event channel; the yielded iterator runs until the connection fails.

        On entry the subscription is confirmed by Redis, so anything published
        from then on is seen.
        """
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while True:
                reply = await pubsub.get_message(timeout=5.0)
                if reply is not None and reply["type"] == "subscribe":
                    break
            yield self._stream(pubsub)
        finally:
            await pubsub.aclose()

    @staticmethod
    async def _stream(pubsub) -> AsyncIterator[Event]:
        # [issue 17] below get_message: every process reads every room's events
        async for kind, _channel, payload in replies(pubsub):
            if kind != b"message":  # a subscribe confirmation
                continue
            event = received_event(payload)
            if event is not None:
                yield event
