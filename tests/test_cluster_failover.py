"""Redis Cluster with replicas (SPEC §8): 3 masters, each with a replica, all real
``redis-server`` processes on loopback. With ``--durability strict`` each send waits
for a replica on the *room's* node (not a default node); a master killed under load
is replaced by its replica, chat answers again within 30 s, and no acknowledged
message is lost or stored twice."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from chatroom.models.archive import ArchivedMessage
from chatroom.models.keys import RedisKeys
from chatroom.storage import strict_durability_wait
from tests.redis_topologies import cluster_topology
from tests.test_cluster import start
from tests.test_sentinel import Sender

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
        config = database.replace(
            send_burst=100_000, auth_burst=100_000, history_size=2000, durability="strict"
        )
        secret = secrets.token_urlsafe(32)
        one = await start(config, url, secret, wait)
        two = await start(config, url, secret, wait)
        tasks: list[asyncio.Task] = []
        try:
            alice = await one.client("alice")
            bob = await two.client("bob")
            room_node = cluster.master_of(RedisKeys().seq("lobby"))
            others = [n for n in cluster.nodes if n is not room_node]
            before = [wait_calls(n) for n in cluster.nodes]
            for i in range(5):
                await alice.send(f"strict {i}", client_id=f"s{i}")
                assert (await alice.answer())["type"] == "ack"
            after = [wait_calls(n) for n in cluster.nodes]
            grew = {n.port: a - b for n, a, b in zip(cluster.nodes, after, before, strict=True)}
            assert grew[room_node.port] >= 5, grew  # on the room's node...
            assert all(grew[n.port] == 0 for n in others), grew  # ...and nowhere else

            senders = [Sender(alice, "a"), Sender(bob, "b")]
            tasks = [asyncio.create_task(s.run()) for s in senders]
            await asyncio.sleep(1.0)
            killed = time.monotonic()
            room_node.kill()
            promoted = await asyncio.to_thread(
                cluster.wait_for_failover, room_node, RedisKeys().seq("lobby")
            )
            # Strict needs a replica: the killed node comes back and rejoins as one.
            await asyncio.to_thread(room_node.start)
            deadline = killed + 30
            while not all(
                any(w > killed + promoted and a == "ack" for w, _, a in x.answers) for x in senders
            ):
                assert time.monotonic() < deadline, "no ack within 30 s of the kill"
                await asyncio.sleep(0.05)
            back = max(
                min(t for w, t, a in x.answers if w > killed and a == "ack") for x in senders
            )
            for s in senders:
                s.running = False
            await asyncio.gather(*tasks)

            graph = one.server.controllers
            await graph.archive.archive_once()
            kept = {m.message_id: m.text for m in ArchivedMessage.select()}
            history = (await graph.messages.history("lobby")).decoded()
            kept.update((m["id"], m["text"]) for m in history)
            texts = sorted(kept.values())
            assert not {t for t in texts if texts.count(t) > 1}, "stored twice"
            where = {text: i for i, text in kept.items()}
            acked = {
                f"{s.tag} {cid.split('-')[1]}": i for s in senders for cid, i in s.acked.items()
            }
            lost = {t: i for t, i in acked.items() if where.get(t) != i}
            assert not lost, f"acknowledged with strict, then lost or moved: {lost}"
            with capsys.disabled():
                print(
                    f"\n[cluster] a master killed: its replica took over in {promoted:.1f}s; "
                    f"both senders acked again {back - killed:.1f}s after the kill; "
                    f"{len(acked)} acked, {sum(s.refused for s in senders)} unavailable "
                    "answers, none lost"
                )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for running in (one, two):
                for client in running.clients:
                    client.close()
                await running.server.stop()
