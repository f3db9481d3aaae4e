"""[issue 16] Sharded pub/sub through a master failover: 3 masters with a replica
each (real ``redis-server`` processes on loopback), ``--durability strict``. The
master of the lobby's slot is killed while one host sends and the other only
listens: the listening host's connection to that node fails, it subscribes the
lobby's shard channel again on the promoted replica, recovers what it missed
from the history, and its client gets every acknowledged message, in order."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from chatroom.models.keys import RedisKeys
from chatroom.storage import strict_durability_wait
from tests.failover_load import Sender, serve, stop_hosts
from tests.redis_topologies import cluster_topology, wait_for
from tests.test_cluster_sharded import subscribers

pytestmark = pytest.mark.timeout(120)


async def test_a_master_fails_over_while_a_host_only_listens(tmp_path, database, capsys):
    with cluster_topology(tmp_path / "cluster", masters=3, replicas=1) as cluster:
        url = cluster.url
        wait = strict_durability_wait(url)
        config = database.replace(
            send_burst=100_000, auth_burst=100_000, history_size=2000, durability="strict"
        )
        secret = secrets.token_urlsafe(32)
        hosts = [await serve(config, url, secret, wait) for _ in range(2)]
        one, two = hosts
        task = None
        try:
            alice = await one.client("alice")
            carol = await two.client("carol")  # only listens, on the other host
            channel = RedisKeys().room_events("lobby")
            node = cluster.master_of(channel)
            assert subscribers(cluster, "lobby") == 2
            sender = Sender(alice, "a")
            task = asyncio.create_task(sender.run())
            await asyncio.sleep(1.0)
            killed = time.monotonic()
            node.kill()
            await asyncio.to_thread(cluster.wait_for_failover, node, channel)
            await asyncio.to_thread(node.start)  # strict sends need a replica again
            while not any(w > killed and a == "ack" for w, _, a in sender.answers):
                assert time.monotonic() < killed + 30, "no ack within 30 s of the kill"
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            sender.running = False
            await task
            assert cluster.master_of(channel) is not node
            await asyncio.to_thread(
                wait_for, lambda: subscribers(cluster, "lobby") == 2, 15, "both hosts resubscribed"
            )
            acked = sorted(sender.acked.values())
            assert acked == list(range(1, len(acked) + 1))
            for i in acked:
                await carol.next("message", id=i, timeout=10)
            assert not [f for f in carol.unread if f["type"] == "joined"], "reset"
            with capsys.disabled():
                print(
                    f"\n[sharded] a master killed: {len(acked)} acked, {sender.refused} "
                    "unavailable answers, every one delivered to the listening host"
                )
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await stop_hosts(hosts)
