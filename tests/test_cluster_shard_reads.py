"""[issue 16, 17] How ShardSubscriptions reads its node connections, on a real 3-master
Redis Cluster: below redis-py's ``get_message`` (``models.pubsub_read.replies``), an
event that is not ours skipped and the next one delivered; an idle connection whose
far end went away found out by the idle ping; a stale slot table's ``MOVED`` answer
followed to the slot's node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis

from chatroom.models import room_channels
from chatroom.models.events import EventBus
from chatroom.models.keys import RedisKeys
from chatroom.models.pubsub_read import _hiredis_source
from chatroom.models.room_channels import ShardSubscriptions, Subscribed
from chatroom.storage import close_redis, make_redis
from tests.redis_topologies import cluster_topology
from tests.test_cluster import flushed

pytestmark = pytest.mark.timeout(60)

KEYS = RedisKeys()
TIMEOUT = 5.0
TYPING = b'{"type":"typing"}'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with cluster_topology(tmp_path_factory.mktemp("shard-reads")) as topology:
        yield topology


@contextlib.asynccontextmanager
async def sharded(cluster) -> AsyncIterator[tuple[EventBus, ShardSubscriptions]]:
    """A sharded bus on a fresh client of the (flushed) cluster, and its subscriptions."""
    flushed(cluster)
    client = make_redis(cluster.url)
    bus = EventBus(client, KEYS, sharded=True)
    try:
        yield bus, ShardSubscriptions(bus)
    finally:
        await close_redis(client)


async def next_item(items):
    return await asyncio.wait_for(anext(items), TIMEOUT)


def subscribers(cluster, room: str) -> int:
    channel = KEYS.room_events(room)
    with cluster.master_of(channel).client() as client:
        return int(client.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])


async def test_a_node_connection_is_read_below_get_message(cluster, monkeypatch):
    """Every event of a room is read once per process: as on one Redis, the reader
    takes the replies off the socket itself, never through ``get_message`` (its
    per-message layers cost more than the event's own handling). Something that is
    not an event on the room's channel is skipped, and the next event arrives."""
    calls = []
    get_message = aioredis.client.PubSub.get_message

    async def counted(self, *args, **kwargs):
        calls.append(args)
        return await get_message(self, *args, **kwargs)

    monkeypatch.setattr(aioredis.client.PubSub, "get_message", counted)
    async with sharded(cluster) as (bus, subscriptions), subscriptions.running() as items:
        subscriptions.want("lobby")
        assert await next_item(items) == Subscribed("lobby", False)
        assert _hiredis_source(subscriptions._placed["lobby"].pubsub) is not None
        channel = KEYS.room_events("lobby")
        with cluster.master_of(channel).client() as client:
            client.execute_command("SPUBLISH", channel, b"not an envelope")
        await bus.publish("lobby", TYPING)
        event = await next_item(items)
        assert (event.room, event.frame) == ("lobby", TYPING)
    assert calls == []


class GoneQuiet:
    """A TCP forwarder to one Redis node. ``go_quiet`` does to the connections open
    through it what a host that restarted does: the node's side is gone, the client
    is told nothing, and the next thing the client sends is refused (the connection
    reset). New connections go through as before."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.quiet: list[asyncio.Event] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def go_quiet(self) -> None:
        for quiet in self.quiet:
            quiet.set()

    async def _serve(self, reader, writer) -> None:
        node_reader, node_writer = await asyncio.open_connection("127.0.0.1", self.port)
        quiet = asyncio.Event()
        self.quiet.append(quiet)

        async def to_client() -> None:
            while data := await node_reader.read(65536):
                writer.write(data)

        async def to_node() -> None:
            while data := await reader.read(65536):
                if quiet.is_set():
                    writer.transport.abort()
                    return
                node_writer.write(data)

        down, up = asyncio.create_task(to_client()), asyncio.create_task(to_node())
        waiting = asyncio.create_task(quiet.wait())
        await asyncio.wait((up, waiting), return_when=asyncio.FIRST_COMPLETED)
        down.cancel()
        node_writer.close()  # the node drops the subscription
        if quiet.is_set():
            await up
        else:  # the client closed it
            waiting.cancel()
            writer.close()

    async def close(self) -> None:
        self.server.close()


async def test_an_idle_connection_whose_node_went_away_is_found_by_the_ping(cluster, monkeypatch):
    """Nothing arrives on the lobby's connection after its node went away without a
    word, so no read fails: only the idle ping, refused, finds it out. The lobby is
    subscribed again and comes back ``again``."""
    monkeypatch.setattr(room_channels, "IDLE_SECONDS", 0.3)
    node = cluster.master_of(KEYS.room_events("lobby"))
    proxy = GoneQuiet(node.port)
    port = await proxy.start()
    opened = ShardSubscriptions._open

    async def through_the_proxy(self, node):
        kwargs = {**node.connection_kwargs, "port": port}
        stand_in = SimpleNamespace(
            name=node.name, connection_class=node.connection_class, connection_kwargs=kwargs
        )
        return await opened(self, stand_in)

    monkeypatch.setattr(ShardSubscriptions, "_open", through_the_proxy)
    try:
        async with sharded(cluster) as (bus, subscriptions), subscriptions.running() as items:
            subscriptions.want("lobby")
            assert await next_item(items) == Subscribed("lobby", False)
            await asyncio.sleep(0.5)  # idle pings, answered: nothing changes
            await bus.publish("lobby", TYPING)
            assert (await next_item(items)).frame == TYPING
            proxy.go_quiet()
            assert await next_item(items) == Subscribed("lobby", True)
            assert subscribers(cluster, "lobby") == 1
            await bus.publish("lobby", TYPING)
            assert (await next_item(items)).frame == TYPING
    finally:
        await proxy.close()


async def test_a_stale_slot_table_meets_moved_and_follows_it(cluster):
    """The slot moved after this process read the slot table: its SSUBSCRIBE goes to
    the old node, which answers ``MOVED``. That loses the link; the table is read
    again and the room subscribed on the node that serves its slot now."""
    channel = KEYS.room_events("moved")
    async with sharded(cluster) as (bus, subscriptions):
        await bus.redis.initialize()  # the slot table, read now
        source = cluster.master_of(channel)
        target = next(n for n in cluster.nodes if n is not source)
        await asyncio.to_thread(cluster.migrate_slot, channel, target)
        assert bus.redis.get_node_from_key(channel).port == source.port  # stale
        async with subscriptions.running() as items:
            subscriptions.want("moved")
            assert await next_item(items) == Subscribed("moved", False)
            assert subscriptions._placed["moved"].node.endswith(f":{target.port}")
            assert subscribers(cluster, "moved") == 1
            await bus.publish("moved", TYPING)
            assert (await next_item(items)).frame == TYPING
