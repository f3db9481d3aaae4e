"""Redis Cluster (SPEC §8): two chatroom processes on a real 3-master cluster on loopback
(the machine's ``redis-server``). Rooms spread over the masters; messages cross the
processes; history, presence, limits and epochs hold in every room."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis

from chatroom.config import ConfigError
from chatroom.models.archive import ArchivedMessage
from chatroom.models.keys import RedisKeys
from chatroom.storage import MAX_CONNECTIONS, close_redis, make_redis, strict_durability_wait
from tests.conftest import RunningServer
from tests.failover_load import acked_texts, sending, serve, stop_hosts
from tests.processes import until
from tests.redis_topologies import cluster_topology

pytestmark = pytest.mark.timeout(60)

ROOMS = [f"room{i}" for i in range(12)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module: the tests use rooms of their own."""
    with cluster_topology(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


def flushed(cluster) -> str:
    """Empty every node of ``cluster``; its URL."""
    for node in cluster.nodes:
        with node.client() as client:
            client.flushall()
    return cluster.url


@pytest.fixture
def cluster_url(cluster):
    return flushed(cluster)


async def start_hosts(database, url: str, count: int = 2, **changes) -> list[RunningServer]:
    """``count`` chatroom hosts on ``url``, with limits out of the tests' way."""
    config = database.replace(
        send_burst=100_000, auth_burst=100_000, rooms_per_hour=1000, **changes
    )
    secret = secrets.token_urlsafe(32)
    return [await serve(config, url, secret) for _ in range(count)]


@pytest.fixture
async def two_hosts(database, cluster_url):
    hosts = await start_hosts(database, cluster_url)
    yield hosts
    await stop_hosts(hosts)


def slot_owners(cluster, rooms: list[str]) -> set[int]:
    keys = RedisKeys()
    with cluster.nodes[0].client() as client:
        slots = [client.execute_command("CLUSTER", "KEYSLOT", keys.seq(r)) for r in rooms]
    return {cluster.node_of_slot(int(s)).port for s in slots}


async def test_rooms_over_the_masters_messages_cross_hosts(cluster, two_hosts):
    one, two = two_hosts
    assert len(slot_owners(cluster, ROOMS)) == 3  # the rooms live on every master
    token = await one.api.user("alice")
    for room in ROOMS:
        response = await one.api.request("POST", "/api/rooms", {"name": room}, token=token)
        assert response.code in (200, 201), response.body
    alice = await one.client("alice", join=None)
    bob = await two.client("bob", join=None)
    for room in ROOMS:
        await alice.join(room)
        await bob.join(room)
    for i, room in enumerate(ROOMS):
        await alice.send(f"hello {room}", room=room, client_id=f"a{i}")
        ack = await alice.next("ack", room=room)
        assert ack["id"] == 1
        await bob.next("message", room=room, text=f"hello {room}")
        await bob.send(f"back {room}", room=room, client_id=f"b{i}")
        await alice.next("message", room=room, text=f"back {room}")
    # History and presence of each room, from the other host.
    carol = await two.client("carol", join=None)
    for room in ROOMS:
        joined = await carol.join(room)
        assert [m["text"] for m in joined["messages"]] == [f"hello {room}", f"back {room}"]
        assert set(joined["online"]) >= {"alice", "bob", "carol"}
        assert isinstance(joined["epoch"], str)
    # A retry is stored once, whichever host it reaches.
    alice_again = await two.client("alice", join=None)
    await alice_again.send(f"hello {ROOMS[0]}", room=ROOMS[0], client_id="a0")
    assert (await alice_again.answer())["id"] == 1
    assert (await carol.join(ROOMS[0], since=2))["messages"] == []


async def test_a_flush_of_one_master_starts_new_epochs_on_its_rooms(cluster, two_hosts):
    one, two = two_hosts
    alice = await one.client("alice")
    bob = await two.client("bob")
    for i in range(3):
        await alice.send(f"m{i}", client_id=f"c{i}")
        await alice.answer()
    await bob.next("message", id=3)  # both processes saw them
    await alice.next("message", id=3)
    keys = RedisKeys()
    with cluster.nodes[0].client() as client:
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", keys.seq("lobby")))
    with cluster.node_of_slot(slot).client() as client:
        client.flushall()
    await bob.send("after", client_id="x")
    ack = await bob.answer()
    assert ack["type"] == "ack" and ack["id"] > 3
    reset = await alice.next("joined", reset=True)
    assert [m["text"] for m in reset["messages"]] in ([], ["after"])


async def test_strict_durability_waits_on_the_rooms_node(cluster_url):
    """WAITAOF needs Redis 7.2; a 7.0 cluster without replicas has neither WAITAOF nor a
    replica to WAIT for: refused at start with a clear error."""
    with pytest.raises(ConfigError, match="replicas"):
        strict_durability_wait(cluster_url)


async def test_the_cluster_client_refuses_a_database(cluster):
    from chatroom.config import Config

    with pytest.raises(ConfigError, match="one database"):
        Config(redis_url=cluster.url + "/1")
    client = make_redis(cluster.url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    assert isinstance(redis.__version__, str)


async def test_concurrent_sends_in_many_rooms(two_hosts):
    one, two = two_hosts
    token = await one.api.user("alice")
    for room in ROOMS[:6]:
        await one.api.request("POST", "/api/rooms", {"name": room}, token=token)
    alice = await one.client("alice", join=None)
    bob = await two.client("bob", join=None)
    for room in ROOMS[:6]:
        await alice.join(room)
        await bob.join(room)
    for n in range(5):
        await asyncio.gather(
            *(alice.send(f"{room} {n}", room=room, client_id=f"{room}-{n}") for room in ROOMS[:6])
        )
    for room in ROOMS[:6]:
        got = [(await bob.next("message", room=room))["id"] for _ in range(5)]
        assert got == [1, 2, 3, 4, 5]


async def test_a_slot_migrates_while_chatting(cluster, two_hosts, capsys):
    """The lobby's slot moves to another master, a few keys at a time, while two
    users send: every send is answered, each message stored once, ids consecutive,
    and both hosts deliver every message."""
    one, two = two_hosts
    alice = await one.client("alice")
    bob = await two.client("bob")
    carol = await two.client("carol")
    async with sending(alice, bob) as senders:
        await asyncio.sleep(0.5)
        key = RedisKeys().seq("lobby")
        source = cluster.master_of(key)
        target = next(n for n in cluster.nodes if n is not source)
        await asyncio.to_thread(cluster.migrate_slot, key, target, 0.05)
        assert cluster.master_of(key) is target
        await asyncio.sleep(0.5)
    history = (await one.server.controllers.messages.history("lobby")).decoded()
    ids = [m["id"] for m in history]
    assert ids == list(range(1, len(ids) + 1))
    texts = [m["text"] for m in history]
    assert len(texts) == len(set(texts)), "stored twice"
    acked = acked_texts(senders)
    assert {m["text"]: m["id"] for m in history if m["text"] in acked} == acked
    for i in ids:
        await carol.next("message", id=i, timeout=10)
    with capsys.disabled():
        print(
            f"\n[cluster] slot migrated under load: {len(acked)} acked, "
            f"{sum(s.refused for s in senders)} unavailable answers, none lost or doubled"
        )


async def test_deleting_a_room_removes_its_keys_on_its_node(cluster, two_hosts):
    one, _ = two_hosts
    alice = await one.client("alice")
    for i in range(3):
        await alice.send(f"m{i}", client_id=f"c{i}")
        await alice.answer()
    messages = one.server.controllers.messages
    assert await messages.delete_room("lobby") == 3
    node = cluster.master_of(RedisKeys().seq("lobby"))
    with node.client() as client:
        assert client.keys("chatroom:{lobby}:*") == []


async def test_a_cluster_without_replicas_archives(cluster, two_hosts):
    # The module's cluster has no replicas: a WAIT for one would time out on every
    # archiver pass and nothing would ever reach SQL (nor leave Redis).
    one, _ = two_hosts
    token = await one.api.user("alice")
    response = await one.api.request("POST", "/api/rooms", {"name": "kept"}, token=token)
    assert response.code in (200, 201), response.body
    alice = await one.client("alice", join=None)
    await alice.join("kept")
    for i in range(5):
        await alice.send(f"to keep {i}", room="kept", client_id=f"k{i}")
        await alice.next("ack", room="kept")

    def archived() -> list[int]:
        rows = ArchivedMessage.select().where(ArchivedMessage.room_name == "kept")
        return sorted(row.message_id for row in rows)

    async def all_archived() -> bool:
        return await asyncio.to_thread(archived) == [1, 2, 3, 4, 5]

    await until(all_archived, timeout=15, what="the room's 5 messages archived")


async def test_a_burst_past_the_pool_waits_instead_of_failing(cluster):
    # redis-py's async cluster pools raise MaxConnectionsError past max_connections: a
    # burst of joins on one process answered `unavailable`. chatroom's client waits.
    client = make_redis(flushed(cluster))
    try:
        burst = [client.blpop([f"{{burst}}:{i}"], timeout=0.3) for i in range(MAX_CONNECTIONS * 2)]
        assert await asyncio.gather(*burst) == [None] * (MAX_CONNECTIONS * 2)
    finally:
        await close_redis(client)
