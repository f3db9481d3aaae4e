"""[issue 17] Per-room channels on one Redis (or a Sentinel-managed master): this
process's subscriptions to the channels of the rooms it has members in, on one
connection.

With one channel for every event, every process receives every room's events and
drops those of rooms it has no member in: each process more costs every message
once more. With ``--pubsub-channels rooms`` (the default) a room's events go with
``PUBLISH`` on the room's own channel (``EventBus.room_channel``), and only the
processes that ``SUBSCRIBE``\\ d to it receive them. It is the classic-pub/sub twin
of the Cluster's shard channels (``models.room_channels``), with the same interface
for ``controllers.room_channels.RoomChannels``; its stream yields:

- an ``Event`` of a subscribed room;
- ``Subscribed(room, again)``: Redis confirmed the room's subscription, so every
  event of the room published from now on arrives. ``again``: the room was
  subscribed before and lost it (the connection failed); what was published in
  between is only in the history, and the listener fetches it from there.

One connection carries every room: a failure loses them all, and ``running`` is
entered again, which subscribes every wanted room in one command. No reconnect
happens below it (a Sentinel failover ends the connection: Sentinel kills the
clients of a demoted master, and the next connection goes to the new one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from chatroom.models.events import Event, EventBus, received_event
from chatroom.models.pubsub_read import replies
from chatroom.models.wanted_rooms import Subscribed, WantedRooms

log = logging.getLogger(__name__)

#: What a failed subscription or connection raises.
_FAILURES = (RedisError, OSError)


class RoomSubscriptions(WantedRooms):
    """The channels of the rooms this process wants, subscribed on one connection to
    the one Redis (or the Sentinel's master)."""

    def __init__(self, events: EventBus) -> None:
        super().__init__()
        self._events = events
        #: Rooms whose SUBSCRIBE went out on the current connection.
        self._placed: set[str] = set()
        self._rooms_of: dict[bytes, str] = {}
        #: SUBSCRIBEs and UNSUBSCRIBEs sent and not answered yet, per room: the answers
        #: come in order, so only the last SUBSCRIBE's answer confirms a room.
        self._asked: Counter = Counter()
        self._leaving: Counter = Counter()

    # -- what the listener reads ------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AsyncIterator[Event | Subscribed]]:
        """Hold one connection while inside; yields the stream of what it reads.

        Each room wanted before is subscribed again (and comes ``again``)."""
        for room in self._wanted:
            self._live[room].clear()
        self._placed.clear()
        self._asked.clear()
        self._leaving.clear()
        self._rooms_of.clear()
        pubsub = self._events.redis.pubsub()
        try:
            await pubsub.connect()
        except BaseException:
            await pubsub.aclose()
            raise
        self._dirty.set()
        keeper = asyncio.create_task(self._keep(pubsub))
        try:
            yield self._stream(pubsub)
        finally:
            await self._stop(keeper)
            with contextlib.suppress(*_FAILURES):
                await pubsub.aclose()

    # -- subscribing ---------------------------------------------------------------

    async def _keep(self, pubsub) -> None:
        """Subscribe the wanted rooms that are not, unsubscribe the others: each pass
        in at most two commands. A failed command ends the connection, so that the
        stream fails and everything is subscribed again on a new one."""
        channel = self._events.room_channel
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            leaving = [room for room in self._placed if room not in self._wanted]
            joining = [room for room in self._wanted if room not in self._placed]
            for room in leaving:
                self._placed.discard(room)
                self._live.pop(room, None)
                self._confirmed.discard(room)
                self._leaving[room] += 1
            for room in joining:
                self._placed.add(room)
                self._asked[room] += 1
                self._rooms_of[channel(room).encode()] = room
            try:
                if leaving:
                    await pubsub.execute_command("UNSUBSCRIBE", *map(channel, leaving))
                if joining:
                    await pubsub.execute_command("SUBSCRIBE", *map(channel, joining))
            except _FAILURES as exc:
                log.warning("room channels: subscribing failed (%r)", exc)
                if pubsub.connection is not None:
                    await pubsub.connection.disconnect()
                return

    # -- reading ------------------------------------------------------------------

    async def _stream(self, pubsub) -> AsyncIterator[Event | Subscribed]:
        async for kind, channel, data in replies(pubsub):
            if kind == b"message":
                event = received_event(data)
                if event is not None:
                    yield event
                continue
            room = self._rooms_of.get(channel)
            if room is None:
                continue
            if kind == b"subscribe":
                self._asked[room] -= 1
                if self._asked[room] > 0 or room not in self._placed:
                    continue  # an earlier SUBSCRIBE's answer, or no longer wanted
                confirmed = self._confirm(room)
                if confirmed is not None:
                    yield confirmed
            elif kind == b"unsubscribe":
                self._leaving[room] -= 1
                if self._leaving[room] <= 0 and room not in self._placed:
                    del self._leaving[room]
                    self._rooms_of.pop(channel, None)
