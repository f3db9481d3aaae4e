"""Sentinel (SPEC §8): two chatroom processes on a master + replica watched by three
Sentinels, all real ``redis-server`` processes on loopback. The master is killed
under load: chat answers again within 30 s, each message acknowledged with
``--durability strict`` is there after the failover, exactly once, ids continue, and
both processes deliver again (they reconnected and resubscribed by themselves)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from chatroom.config import ConfigError
from chatroom.storage import strict_durability_wait
from tests.failover_load import sends_through_failover, serve, strict_hosts
from tests.redis_topologies import sentinel_topology

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sentinels(tmp_path):
    """A master, one replica, three Sentinels."""
    with sentinel_topology(tmp_path / "redis") as topology:
        yield topology


@pytest.fixture
def two_replicas(tmp_path):
    """A master, two replicas, three Sentinels: after a failover a replica is left, so
    ``--durability strict`` (a replica must have each message) acknowledges again."""
    with sentinel_topology(tmp_path / "redis", replicas=2) as topology:
        yield topology


async def test_a_master_killed_under_load(two_replicas, database, capsys):
    sentinels = two_replicas
    url = sentinels.url
    wait = strict_durability_wait(url)  # Redis 7.0 with appendfsync always: WAIT 1
    assert wait is not None and wait.replicas == 1
    async with strict_hosts(database, url, wait) as (one, two):
        alice = await one.client("alice")
        bob = await two.client("bob")
        carol = await two.client("carol")  # only listens, on the other process

        async def fail() -> float:
            sentinels.master.kill()
            return await asyncio.to_thread(sentinels.wait_for_failover)

        run = await sends_through_failover([alice, bob], fail, one.server.controllers)

        # Both processes deliver again: carol (process two) gets a message sent on one.
        await alice.send("after the failover", client_id="final")
        final = await alice.answer()
        assert final["type"] == "ack", final
        await carol.next("message", client_id="final", timeout=10)
        with capsys.disabled():
            print(f"\n[sentinel] {run.summary()}")


async def test_strict_acknowledges_only_what_a_replica_has(sentinels, database):
    """With the replica gone, a strict send is ``unavailable`` — and so is its retry,
    though the master has it (a retry must not ack what no replica confirmed). With
    the replica back, the retry is acknowledged with the original id."""
    url = sentinels.url
    config = database.replace(send_burst=100_000, auth_burst=100_000, durability="strict")
    one = await serve(config, url, secrets.token_urlsafe(32), strict_durability_wait(url))
    try:
        alice = await one.client("alice")
        await alice.send("safe", client_id="c1")
        first = await alice.answer()
        assert first["type"] == "ack"
        await asyncio.to_thread(sentinels.replica.kill)
        for _ in range(2):
            await alice.send("unsafe", client_id="c2")
            answer = await alice.answer()
            assert answer.get("code") == "unavailable", answer
        await asyncio.to_thread(sentinels.replica.start)
        await asyncio.to_thread(sentinels.wait_for_replica, sentinels.replica)
        await alice.send("unsafe", client_id="c2")
        answer = await alice.answer()
        assert answer["type"] == "ack" and answer["id"] == first["id"] + 1, answer
    finally:
        for client in one.clients:
            client.close()
        await one.server.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://127.0.0.1:26379", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:26379/", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:26379/m/x", "must be a number"),
        ("redis+sentinel://127.0.0.1:26379/m/0/extra", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:99999/m", "out of range"),
        ("redis+sentinel://h o s t:1/m", "malformed host"),
        ("redis+sentinel://,/m", "malformed host"),
        ("redis+sentinel://127.0.0.1/m%20x", "malformed Sentinel master"),
        ("redis+sentinel://127.0.0.1/m?frobnicate=1", "unknown parameter"),
        ("redis+cluster://127.0.0.1:7000/0", "takes no /db"),
        ("redis+cluster://127.0.0.1:7000/1/2", "takes no /db"),
        ("redis+cluster://" + "h" * 300 + "x:1@:", "malformed host"),
    ],
)
def test_malformed_urls_stop_at_start(tmp_path, url, message):
    from chatroom.config import Config

    with pytest.raises(ConfigError, match=message):
        Config(data_dir=tmp_path, redis_url=url)


def test_urls_parse_with_passwords_ipv6_and_defaults():
    from chatroom.redis_urls import parse_redis_url

    target = parse_redis_url(
        "redis+sentinel://u:p%40ss/w@[::1]:26380,h2/chat/3?sentinel_password=s"
    )
    assert target.kind == "sentinel" and target.master == "chat" and target.db == 3
    assert target.nodes == (("::1", 26380), ("h2", 26379))
    assert (target.username, target.password, target.sentinel_password) == ("u", "p@ss/w", "s")
    cluster = parse_redis_url("redis+cluster://a:7000,b")
    assert cluster.nodes == (("a", 7000), ("b", 6379)) and cluster.replicated
    assert not parse_redis_url("redis://localhost:6379/0").replicated
