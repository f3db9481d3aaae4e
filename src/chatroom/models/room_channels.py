"""[issue 16] Sharded pub/sub in a Redis Cluster: this process's subscriptions to the
shard channels of the rooms it has members in, one connection per node.

A room's events go with ``SPUBLISH`` on its own channel, in its slot
(``EventBus.room_channel``); Redis delivers them only to the connections that
``SSUBSCRIBE``\\ d to that channel on a node of the slot's shard. So this process
keeps one connection to each master that holds a room it wants, reads each with
a task of its own, and hands what it reads, in order, to one queue:

- an ``Event`` (a message, change, presence, typing or epoch event of a room);
- ``Subscribed(room, again)``: Redis confirmed the room's subscription, so every
  event of the room published from now on arrives. ``again``: the room was
  subscribed before and lost it meanwhile; what was published in between is
  only in the history, and the listener fetches it from there.

A room's subscription is lost when its connection fails (the node died, a
failover), when a node answers ``MOVED``, or when Redis itself ends it with a
``sunsubscribe`` (Redis 7 does that to every subscriber of a slot that the node no
longer serves: a slot migration, a master demoted). The room is then subscribed
again on the node that holds its slot now, after the slot table is read again.

Each connection is read with ``models.pubsub_read.replies`` (below redis-py's
``get_message``, as the one Redis' subscriptions are: the read is paid once per
process per event), and a task of its own pings it when it read nothing for
``IDLE_SECONDS``, so that a dead connection fails.

redis-py's ``ClusterPubSub`` is not used: it takes Redis' own ``sunsubscribe`` for
nothing (the subscription is gone, redis-py still counts it until some other
command of the client meets a ``MOVED``: tried on Redis 7.0.15 with a slot
migration, nothing arrived afterwards), and it subscribes again after a reconnect
without telling its caller, which must then recover what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from chatroom.models.events import Event, EventBus, received_event
from chatroom.models.pubsub_read import replies
from chatroom.models.wanted_rooms import Subscribed, WantedRooms

log = logging.getLogger(__name__)

#: What a failed subscription, connection or slot table read raises.
_FAILURES = (RedisError, RedisClusterException, OSError)
#: Events and confirmations read ahead of the listener, at most: past it, the node
#: connections wait (and Redis buffers), as with one connection.
QUEUE_SIZE = 10_000
#: After a loss, the slot table is read again after this long, doubling up to the cap
#: while subscribing keeps failing (a failover takes the cluster a few seconds).
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0
#: A connection that read nothing this long is pinged, so a dead one fails (the send
#: or the read fails once the far end answers, or the kernel gives up on it).
IDLE_SECONDS = 15.0


@dataclass(eq=False)
class _Link:
    """One connection to one node and the rooms subscribed on it."""

    node: str
    pool: aioredis.ConnectionPool
    pubsub: aioredis.client.PubSub
    rooms: set[str] = field(default_factory=set)
    #: SSUBSCRIBEs and SUNSUBSCRIBEs sent and not answered yet, per room: the answers
    #: come in order, so only the last SSUBSCRIBE's confirms a room, and a
    #: ``sunsubscribe`` nobody is waiting for is Redis' own.
    asked: Counter = field(default_factory=Counter)
    leaving: Counter = field(default_factory=Counter)
    reader: asyncio.Task | None = None
    pinger: asyncio.Task | None = None
    #: Replies read so far: the pinger pings when it did not move for IDLE_SECONDS.
    heard: int = 0
    #: Being closed (by whichever of its tasks or the keeper came first).
    closed: bool = False


class ShardSubscriptions(WantedRooms):
    """The shard channels of the rooms this process wants, kept subscribed on the
    node of each room's slot through failovers and slot migrations."""

    def __init__(self, events: EventBus) -> None:
        super().__init__()
        cluster = events.redis
        assert isinstance(cluster, aiocluster.RedisCluster), "sharded pub/sub needs a Cluster"
        self._cluster = cluster
        self._events = events
        self._placed: dict[str, _Link] = {}
        self._links: dict[str, _Link] = {}
        self._rooms_of: dict[bytes, str] = {}
        self._queue: asyncio.Queue[Event | Subscribed] = asyncio.Queue(QUEUE_SIZE)
        self._refresh = False
        self._delay = RETRY_FIRST_SECONDS

    # -- what the listener reads ------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AsyncIterator[Event | Subscribed]]:
        """Keep the subscriptions while inside; yields the stream of what is read.

        Each room wanted before is subscribed again (and comes ``again``)."""
        for room in self._wanted:
            self._live[room].clear()
        self._queue = asyncio.Queue(QUEUE_SIZE)  # nothing read before counts now
        self._dirty.set()
        keeper = asyncio.create_task(self._keep())
        try:
            yield self._stream()
        finally:
            await self._stop(keeper)
            for link in list(self._links.values()):
                await self._close(link)
            self._placed.clear()

    async def _stream(self) -> AsyncIterator[Event | Subscribed]:
        queue = self._queue
        while True:
            yield await queue.get()

    # -- subscribing on the right node -------------------------------------------

    async def _keep(self) -> None:
        """Subscribe the wanted rooms that are not, unsubscribe the others; after a
        loss, read the slot table again first (with a growing wait while it fails)."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._cluster.initialize()  # the slot table, once (a no-op after)
                if self._refresh:
                    await asyncio.sleep(self._delay)
                    self._delay = min(self._delay * 2, RETRY_MAX_SECONDS)
                    self._refresh = False
                    await self._cluster.nodes_manager.initialize()
                for room in [r for r in self._live if r not in self._wanted]:
                    await self._unplace(room)
                for room in [r for r in self._wanted if r not in self._placed]:
                    await self._place(room)
            except _FAILURES as exc:
                log.warning("room channels: subscribing failed (%r); retrying", exc)
                self._refresh = True
                self._dirty.set()

    async def _place(self, room: str) -> None:
        if room not in self._wanted or room in self._placed:  # changed while this pass ran
            return
        channel = self._events.room_channel(room)
        node = self._cluster.get_node_from_key(channel)
        link = self._links.get(node.name)
        if link is None:
            link = await self._open(node)
        self._rooms_of[channel.encode()] = room
        link.rooms.add(room)
        link.asked[room] += 1
        self._placed[room] = link
        try:
            await link.pubsub.execute_command("SSUBSCRIBE", channel)
        except _FAILURES:
            await self._lose_link(link)
            raise

    async def _unplace(self, room: str) -> None:
        if room in self._wanted:  # wanted again while this pass ran
            return
        self._live.pop(room, None)
        self._confirmed.discard(room)
        link = self._placed.pop(room, None)
        if link is None:  # lost meanwhile
            return
        link.rooms.discard(room)
        if not link.rooms:  # closing the connection ends its subscriptions
            await self._close(link)
            self._rooms_of.pop(self._events.room_channel(room).encode(), None)
            return
        link.leaving[room] += 1
        try:
            await link.pubsub.execute_command("SUNSUBSCRIBE", self._events.room_channel(room))
        except _FAILURES:
            await self._lose_link(link)
            raise

    async def _open(self, node: aiocluster.ClusterNode) -> _Link:
        kwargs = dict(node.connection_kwargs)
        # No reconnect inside redis-py: a failure must reach the reader, which
        # subscribes the link's rooms again where they belong and recovers them.
        kwargs["retry"] = Retry(NoBackoff(), 0)
        pool = aioredis.ConnectionPool(
            connection_class=node.connection_class, max_connections=1, **kwargs
        )
        pubsub = aioredis.client.PubSub(pool)
        try:
            await pubsub.connect()
        except _FAILURES:
            await pool.disconnect()
            raise
        link = self._links[node.name] = _Link(node.name, pool, pubsub)
        link.reader = asyncio.create_task(self._read(link))
        link.pinger = asyncio.create_task(self._ping(link))
        return link

    async def _close(self, link: _Link) -> None:
        if link.closed:  # the reader and the pinger may both fail: one closes it
            return
        link.closed = True
        if self._links.get(link.node) is link:
            del self._links[link.node]
        for task in (link.reader, link.pinger):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(*_FAILURES):
            await link.pubsub.aclose()
        with contextlib.suppress(*_FAILURES):
            await link.pool.disconnect()

    async def _lose_link(self, link: _Link) -> None:
        """The link failed: its rooms are subscribed again elsewhere (or there, later)."""
        for room in list(link.rooms):
            self._lose(room, link)
        await self._close(link)

    def _lose(self, room: str, link: _Link) -> None:
        if self._placed.get(room) is link:
            del self._placed[room]
        link.rooms.discard(room)
        live = self._live.get(room)
        if live is not None:
            live.clear()
        self._refresh = True
        self._dirty.set()

    # -- reading ------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        """Read one link until it fails; what it reads goes to the queue, in order.

        An error reply (``MOVED``: the slot table was stale) fails it too."""
        try:
            async for kind, channel, data in replies(link.pubsub):
                link.heard += 1
                if kind != b"smessage":
                    await self._on_reply(link, kind, channel)
                    continue
                event = received_event(data)
                if event is not None:
                    await self._queue.put(event)
        except _FAILURES as exc:
            if link.rooms:
                log.warning("room channels: the connection to %s failed (%r)", link.node, exc)
            await self._lose_link(link)

    async def _ping(self, link: _Link) -> None:
        """Ping the link whenever it read nothing for ``IDLE_SECONDS``. The pong is
        not looked for (``PONG``, or ``[b"pong", b""]`` in RESP2: ``replies`` skips
        both), as ``get_message`` did not: a dead connection fails on this send or on
        the reader's read, and a failed send loses the link here."""
        try:
            while True:
                heard = link.heard
                await asyncio.sleep(IDLE_SECONDS)
                if link.heard == heard:
                    await link.pubsub.ping()
        except _FAILURES as exc:
            log.warning("room channels: pinging %s failed (%r)", link.node, exc)
            await self._lose_link(link)

    async def _on_reply(self, link: _Link, kind: bytes, channel: bytes) -> None:
        room = self._rooms_of.get(channel)
        if room is None:
            return
        if kind == b"ssubscribe":
            link.asked[room] -= 1
            if link.asked[room] > 0 or self._placed.get(room) is not link:
                return  # an earlier SSUBSCRIBE's answer, or no longer wanted here
            confirmed = self._confirm(room)
            if confirmed is None:
                return
            self._delay = RETRY_FIRST_SECONDS
            await self._queue.put(confirmed)
        elif kind == b"sunsubscribe":
            if link.leaving[room] > 0:  # the answer to ours
                link.leaving[room] -= 1
                if room not in self._wanted and room not in link.rooms:
                    self._rooms_of.pop(self._events.room_channel(room).encode(), None)
                return
            # Redis' own: this node no longer serves the room's slot.
            log.info("room channels: %s dropped %r (its slot moved)", link.node, room)
            self._lose(room, link)
