"""[issue 16] Sharded pub/sub on a real 3-master Redis Cluster: each room's events go
with SPUBLISH on the room's own shard channel, which only the processes with a
member in the room subscribe to (on the node of the room's slot). Messages cross
two chatroom hosts; joins and leaves subscribe and unsubscribe; a join racing sends
misses nothing; a slot that moves while a host only listens is followed."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.config import Config, ConfigError
from chatroom.controllers import room_channels
from chatroom.models.keys import RedisKeys
from chatroom.models.room_channels import ShardSubscriptions, Subscribed
from chatroom.storage import check_sharded_pubsub
from tests.failover_load import stop_hosts
from tests.redis_topologies import cluster_topology, wait_for
from tests.test_cluster import flushed, start_hosts
from tests.test_cluster_shard_reads import sharded

pytestmark = pytest.mark.timeout(90)

KEYS = RedisKeys()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module, flushed for each test."""
    with cluster_topology(tmp_path_factory.mktemp("sharded")) as topology:
        yield topology


@pytest.fixture
async def two_hosts(database, cluster):
    hosts = await start_hosts(database, flushed(cluster))
    yield hosts
    await stop_hosts(hosts)


@pytest.fixture
def no_linger(monkeypatch):
    """A room's channel is unsubscribed as soon as its last local member leaves."""
    monkeypatch.setattr(room_channels, "LINGER_SECONDS", 0.0)


def subscribers(cluster, room: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of ``room``'s channel on the node of its slot."""
    channel = KEYS.room_events(room)
    with cluster.master_of(channel).client() as client:
        _, count = client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(count)


def command_calls(cluster, command: str) -> int:
    total = 0
    for node in cluster.nodes:
        with node.client() as client:
            stats = client.info("commandstats").get(f"cmdstat_{command}", {})
        total += int(stats.get("calls", 0))
    return total


async def test_only_hosts_with_a_member_subscribe_and_messages_cross(cluster, two_hosts):
    one, two = two_hosts
    assert one.server.controllers.chat._hub.channels is not None  # sharded: the default
    assert KEYS.room_events("lobby") == "chatroom:{lobby}:events"
    with cluster.nodes[0].client() as client:  # the channel is in the room's slot
        keys = (KEYS.room_events("lobby"), KEYS.seq("lobby"))
        slots = {client.execute_command("CLUSTER", "KEYSLOT", k) for k in keys}
    assert len(slots) == 1
    assert subscribers(cluster, "lobby") == 0
    alice = await one.client("alice")
    # Only host one has a member in the lobby: one subscriber, on the room's node.
    assert subscribers(cluster, "lobby") == 1
    published = command_calls(cluster, "publish")
    for i in range(3):
        await alice.send(f"alone {i}", client_id=f"a{i}")
        await alice.next("message", text=f"alone {i}")
    assert command_calls(cluster, "publish") == published  # no classic PUBLISH for a room

    bob = await two.client("bob")
    assert subscribers(cluster, "lobby") == 2
    await alice.next("presence", user="bob", state="online")  # presence crosses too
    await alice.send("hi bob", client_id="a3")
    await bob.next("message", text="hi bob")
    await bob.send("hi alice", client_id="b0")
    await alice.next("message", text="hi alice")
    await bob.send_frame({"type": "typing", "room": "lobby"})
    await alice.next("typing", user="bob")

    # Bob leaves: host two unsubscribes (after a short linger), host one stays.
    await bob.send_frame({"type": "leave", "room": "lobby"})
    await asyncio.to_thread(
        wait_for, lambda: subscribers(cluster, "lobby") == 1, 15, "host two to unsubscribe"
    )
    await alice.send("after bob", client_id="a4")
    await alice.next("message", text="after bob")
    await bob.nothing("message", text="after bob")
    assert two.server.controllers.chat._hub.channels.subscribed() == set()
    assert one.server.controllers.chat._hub.channels.subscribed() == {"lobby"}


async def test_rooms_spread_over_the_nodes_each_host_subscribes_its_own(cluster, two_hosts):
    one, two = two_hosts
    token = await one.api.user("alice")
    rooms = [f"spread{i}" for i in range(6)]
    for room in rooms:
        response = await one.api.request("POST", "/api/rooms", {"name": room}, token=token)
        assert response.code in (200, 201), response.body
    assert len({cluster.master_of(KEYS.room_events(r)).port for r in rooms}) > 1
    alice = await one.client("alice", join=None)
    bob = await two.client("bob", join=None)
    for room in rooms:
        await alice.join(room)
    for room in rooms[:3]:
        await bob.join(room)
    assert [subscribers(cluster, r) for r in rooms] == [2, 2, 2, 1, 1, 1]
    for room in rooms:
        await alice.send(f"in {room}", room=room, client_id=room)
    for room in rooms[:3]:
        await bob.next("message", room=room, text=f"in {room}")
    await bob.nothing("message", wait=0.3)


@pytest.fixture
def slow_subscribe(monkeypatch):
    """Each SSUBSCRIBE goes 0.2 s late, as to a far or busy node."""
    place = ShardSubscriptions._place

    async def late(self, room: str) -> None:
        await asyncio.sleep(0.2)
        await place(self, room)

    monkeypatch.setattr(ShardSubscriptions, "_place", late)


async def test_a_first_join_racing_sends_misses_nothing(
    cluster, no_linger, slow_subscribe, two_hosts
):
    """Each of bob's joins is the first of the lobby on host two (its channel was
    unsubscribed), and its subscription is slow: a message sent while the join runs
    is in its history or arrives live, and so is one sent just after ``joined``, even
    when nothing follows them to reveal a gap."""
    one, two = two_hosts
    alice = await one.client("alice")
    bob = await two.client("bob", join=None)
    for n in range(8):
        assert subscribers(cluster, "lobby") == 1
        await bob.send_frame({"type": "join", "room": "lobby"})
        await asyncio.sleep(n % 4 * 0.05)
        await alice.send(f"race {n}", client_id=f"r{n}")
        during = (await alice.answer())["id"]
        joined = await bob.next("joined")
        await alice.send(f"after {n}", client_id=f"s{n}")
        after = (await alice.answer())["id"]
        if during not in [m["id"] for m in joined["messages"]]:
            await bob.next("message", id=during, timeout=5)
        await bob.next("message", id=after, timeout=5)
        await bob.send_frame({"type": "leave", "room": "lobby"})
        await asyncio.to_thread(
            wait_for, lambda: subscribers(cluster, "lobby") == 1, 10, "host two to unsubscribe"
        )
        bob.unread.clear()


async def test_a_slot_moves_while_a_host_only_listens(cluster, two_hosts, capsys):
    """Host two only listens to the lobby (its client sends nothing, so it meets no
    MOVED): when the slot moves, Redis drops its subscription, and host two
    subscribes again on the new node and recovers what it missed."""
    from tests.failover_load import Sender

    one, two = two_hosts
    alice = await one.client("alice")
    carol = await two.client("carol")
    sender = Sender(alice, "a")
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0.5)
        channel = KEYS.room_events("lobby")
        source = cluster.master_of(channel)
        target = next(n for n in cluster.nodes if n is not source)
        await asyncio.to_thread(cluster.migrate_slot, channel, target, 0.05)
        assert cluster.master_of(channel) is target
        await asyncio.to_thread(
            wait_for, lambda: subscribers(cluster, "lobby") == 2, 15, "both hosts on the new node"
        )
        await asyncio.sleep(0.5)
    finally:
        sender.running = False
        await task
    with source.client() as client:
        assert client.execute_command("PUBSUB", "SHARDNUMSUB", channel)[1] == 0
    acked = sorted(sender.acked.values())
    assert acked == list(range(1, len(acked) + 1))
    for i in acked:
        await carol.next("message", id=i, timeout=10)
    with capsys.disabled():
        print(f"\n[sharded] slot moved under a listening host: {len(acked)} acked, all delivered")


async def test_classic_mode_keeps_the_one_channel(cluster, database):
    """``--cluster-pubsub classic``: every event on the classic channel, no shard channel."""
    hosts = await start_hosts(database, flushed(cluster), cluster_pubsub="classic")
    try:
        one, two = hosts
        assert one.server.controllers.chat._hub.channels is None
        alice = await one.client("alice")
        bob = await two.client("bob")
        published = command_calls(cluster, "publish")
        await alice.send("classic", client_id="c0")
        await bob.next("message", text="classic")
        assert subscribers(cluster, "lobby") == 0
        assert command_calls(cluster, "publish") > published
    finally:
        await stop_hosts(hosts)


def test_the_setting_applies_to_a_cluster_only():
    cluster_url = "redis+cluster://127.0.0.1:7000"
    assert Config(redis_url=cluster_url).sharded_pubsub
    assert not Config(redis_url=cluster_url, cluster_pubsub="classic").sharded_pubsub
    assert not Config(redis_url="redis://127.0.0.1:6379/0").sharded_pubsub
    assert not Config(redis_url="redis+sentinel://127.0.0.1:26379/chat").sharded_pubsub
    assert not Config().sharded_pubsub  # the embedded Redis
    for bad in ("SHARDED", "both", ""):
        with pytest.raises(ConfigError, match="cluster_pubsub"):
            Config(redis_url=cluster_url, cluster_pubsub=bad)


async def test_a_dropped_connection_is_subscribed_again_and_recovered(
    cluster, slow_subscribe, two_hosts
):
    """Redis drops the pub/sub connections of the lobby's node (as a restart or a
    network cut would); a message sent before host two has subscribed again, with
    nothing after it, still reaches carol: the resubscribe recovers it from the
    history."""
    one, two = two_hosts
    alice = await one.client("alice")
    carol = await two.client("carol")
    await alice.send("before", client_id="b")
    await carol.next("message", text="before")
    node = cluster.master_of(KEYS.room_events("lobby"))
    with node.client() as client:
        assert client.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 2
    await alice.send("while away", client_id="w")
    assert (await alice.answer())["type"] == "ack"
    await carol.next("message", text="while away", timeout=10)
    await asyncio.to_thread(
        wait_for, lambda: subscribers(cluster, "lobby") == 2, 15, "both hosts resubscribed"
    )
    await alice.send("after", client_id="a")
    await carol.next("message", text="after")


def test_a_redis_7_cluster_passes_the_start_check(cluster):
    check_sharded_pubsub(cluster.url)  # Redis 7.0: SPUBLISH exists


def test_the_scripts_publish_as_the_bus_does():
    """The publish of every script that publishes a room's event is chosen once, when it
    is registered: SPUBLISH on the room's shard channel when sharded, else PUBLISH on
    the one channel."""
    from chatroom.models.change_scripts import ARCHIVED_CHANGE_SCRIPT, CHANGE_SCRIPT
    from chatroom.models.events import EventBus
    from chatroom.models.send_script import SEND_SCRIPT

    sharded, classic = EventBus(None, KEYS, sharded=True), EventBus(None, KEYS)
    assert sharded.room_channel("lobby") == "chatroom:{lobby}:events"
    assert classic.room_channel("lobby") == classic.channel == "chatroom:events"
    for script in (SEND_SCRIPT, CHANGE_SCRIPT, ARCHIVED_CHANGE_SCRIPT):
        assert classic.script(script) == script
        assert "'PUBLISH'" not in sharded.script(script)
        assert "redis.call('SPUBLISH'," in sharded.script(script)
    with pytest.raises(AssertionError, match="not a publishing script"):
        sharded.script("return 1")


async def test_leaving_and_joining_again_at_once(cluster, no_linger, two_hosts):
    """Bob leaves and joins the lobby over and over without waiting (his host
    subscribes and unsubscribes the channel as fast as it can): every join is
    answered, and afterwards his host is subscribed once and gets the messages."""
    one, two = two_hosts
    alice = await one.client("alice")
    bob = await two.client("bob")
    for _ in range(15):
        await bob.send_frame({"type": "leave", "room": "lobby"})
        await bob.send_frame({"type": "join", "room": "lobby"})
    for _ in range(15):
        await bob.next("joined", timeout=10)
    assert not [f for f in bob.unread if f["type"] == "error"], bob.unread
    assert subscribers(cluster, "lobby") == 2
    await alice.send("still here?", client_id="s")
    await bob.next("message", text="still here?")


@pytest.fixture
def short_linger(monkeypatch):
    monkeypatch.setattr(room_channels, "LINGER_SECONDS", 0.5)


async def test_a_join_soon_after_the_last_leave_keeps_the_subscription(
    cluster, short_linger, two_hosts
):
    """Bob's host keeps the lobby's channel a while after he left: he is back before
    it is unsubscribed, and it stays subscribed."""
    one, two = two_hosts
    alice = await one.client("alice")
    bob = await two.client("bob")
    await bob.send_frame({"type": "leave", "room": "lobby"})
    assert subscribers(cluster, "lobby") == 2  # lingering
    await bob.join("lobby")
    await alice.send("welcome back", client_id="w")
    await bob.next("message", text="welcome back")
    await asyncio.sleep(1.0)  # past the linger
    assert subscribers(cluster, "lobby") == 2  # the join kept it
    await alice.send("still", client_id="x")
    await bob.next("message", text="still")


async def test_a_room_wanted_again_before_it_was_unsubscribed(cluster):
    """The model alone: a room given up and wanted again in the same instant stays
    subscribed and ready, and its events keep coming."""
    async with sharded(cluster) as (bus, subscriptions), subscriptions.running() as items:
        subscriptions.want("again")
        await asyncio.wait_for(subscriptions.ready("again"), 5)
        assert await asyncio.wait_for(items.__anext__(), 5) == Subscribed("again", False)
        subscriptions.unwant("again")
        subscriptions.want("again")  # before the keeper ran
        await asyncio.wait_for(subscriptions.ready("again"), 5)
        await bus.publish("again", b'{"type":"typing"}')
        event = await asyncio.wait_for(items.__anext__(), 5)
        assert (event.room, event.frame) == ("again", b'{"type":"typing"}')
        assert subscribers(cluster, "again") == 1
