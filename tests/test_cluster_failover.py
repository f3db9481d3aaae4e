"""Redis Cluster with replicas (SPEC §8): 3 masters, each with a replica, all real
``redis-server`` processes on loopback. With ``--durability strict`` each send waits
for a replica on the *room's* node (not a default node); a master killed under load
is replaced by its replica, chat answers again within 30 s, and no acknowledged
message is lost or stored twice."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.models.keys import RedisKeys
from chatroom.storage import strict_durability_wait
from tests.failover_load import sends_through_failover, strict_hosts
from tests.redis_topologies import cluster_topology

pytestmark = pytest.mark.timeout(90)


def wait_calls(node) -> int:
    """How many WAIT commands ``node`` has run."""
    with node.client() as client:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


async def test_strict_waits_on_the_rooms_node_and_a_master_fails_over(tmp_path, database, capsys):
    with cluster_topology(tmp_path / "cluster", masters=3, replicas=1) as cluster:
        url = cluster.url
        wait = strict_durability_wait(url)  # Redis 7.0, appendfsync always: WAIT 1
        assert wait is not None and wait.replicas == 1 and not wait.waitaof
        async with strict_hosts(database, url, wait) as (one, two):
            alice = await one.client("alice")
            bob = await two.client("bob")
            key = RedisKeys().seq("lobby")
            room_node = cluster.master_of(key)
            others = [n for n in cluster.nodes if n is not room_node]
            before = [wait_calls(n) for n in cluster.nodes]
            for i in range(5):
                await alice.send(f"strict {i}", client_id=f"s{i}")
                assert (await alice.answer())["type"] == "ack"
            after = [wait_calls(n) for n in cluster.nodes]
            grew = {n.port: a - b for n, a, b in zip(cluster.nodes, after, before, strict=True)}
            assert grew[room_node.port] >= 5, grew  # on the room's node...
            assert all(grew[n.port] == 0 for n in others), grew  # ...and nowhere else

            async def fail() -> float:
                room_node.kill()
                promoted = await asyncio.to_thread(cluster.wait_for_failover, room_node, key)
                # Strict needs a replica: the killed node comes back and rejoins as one.
                await asyncio.to_thread(room_node.start)
                return promoted

            run = await sends_through_failover([alice, bob], fail, one.server.controllers)
            with capsys.disabled():
                print(f"\n[cluster] a master killed: {run.summary()}")
