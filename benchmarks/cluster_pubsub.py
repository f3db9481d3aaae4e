"""``python -m benchmarks.cluster_pubsub``: what the event bus costs Redis in a Cluster,
classic ``PUBLISH`` on one channel (``--cluster-pubsub classic``) against sharded
``SPUBLISH``/``SSUBSCRIBE`` on a channel per room (what chatroom does in a Cluster by
default: docs/redis.md, "The event bus in a Cluster").

It starts a real 3-master cluster on loopback (tests/redis_topologies.py), then for
1, 2, 4 and 8 subscribed chatroom processes (each stands in as one subscription
connection, which is all a process is to Redis' pub/sub) publishes ``--messages``
messages of a chatroom-sized envelope into one room and reads the CPU time every
node used (``INFO cpu``: used_cpu_user + used_cpu_sys). Only one of the processes has
a member in the room: with sharded pub/sub only that one subscribes to the room's
channel; with classic pub/sub all of them get every message. The figure is Redis
CPU per published message, summed over the nodes (µs), and per delivery.

On a 2-core machine this is a cost figure, not a throughput: the subscribers
drain their sockets in this one process while the nodes run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis
from tests.redis_topologies import ClusterTopology

ROOM = "lobby"
CLASSIC_CHANNEL = "chatroom:events"
SHARDED_CHANNEL = "chatroom:{lobby}:events"
PAYLOAD = b'lobby\n42\n\n{"type":"message","room":"lobby","id":42,"user":"alice","text":"' + (
    b"x" * 120 + b'","ts":1796432133.649888,"client_id":"c1","rev":42}'
)


def node_cpu(cluster: ClusterTopology) -> float:
    total = 0.0
    for node in cluster.nodes:
        with node.client() as client:
            info = client.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def slot_node(cluster: ClusterTopology, key: str):
    with cluster.nodes[0].client() as client:
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
    return cluster.node_of_slot(slot)


async def drain(pubsub: aioredis.client.PubSub, want: int, got: list[int], i: int) -> None:
    while got[i] < want:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        if message is None:
            return
        got[i] += 1


async def measure(cluster: ClusterTopology, mode: str, processes: int, messages: int) -> dict:
    room_node = slot_node(cluster, SHARDED_CHANNEL)
    subscriptions = []
    for i in range(processes):
        # Each process holds its one subscription on some node (classic), or, in the
        # sharded mode, only the process with a member in the room subscribes, on the
        # node of the room's slot.
        if mode == "sharded" and i > 0:
            continue
        node = room_node if mode == "sharded" else cluster.nodes[i % len(cluster.nodes)]
        client = aioredis.Redis(port=node.port)
        pubsub = client.pubsub()
        if mode == "sharded":
            await pubsub.execute_command("SSUBSCRIBE", SHARDED_CHANNEL)
        else:
            await pubsub.subscribe(CLASSIC_CHANNEL)
        await pubsub.get_message(timeout=2.0)
        subscriptions.append((client, pubsub))
    publisher = redis.Redis(port=room_node.port)
    command = "SPUBLISH" if mode == "sharded" else "PUBLISH"
    channel = SHARDED_CHANNEL if mode == "sharded" else CLASSIC_CHANNEL
    got = [0] * len(subscriptions)
    readers = [
        asyncio.create_task(drain(p, messages, got, i)) for i, (_, p) in enumerate(subscriptions)
    ]
    before = node_cpu(cluster)
    started = time.monotonic()

    def publish() -> None:
        for start in range(0, messages, 500):
            pipe = publisher.pipeline(transaction=False)
            for _ in range(min(500, messages - start)):
                pipe.execute_command(command, channel, PAYLOAD)
            pipe.execute()

    await asyncio.to_thread(publish)
    await asyncio.gather(*readers)
    elapsed = time.monotonic() - started
    cpu = node_cpu(cluster) - before
    publisher.close()
    for client, pubsub in subscriptions:
        await pubsub.aclose()
        await client.aclose()
    deliveries = sum(got)
    return {
        "mode": mode,
        "processes": processes,
        "deliveries": deliveries,
        "us_per_message": round(cpu / messages * 1e6, 2),
        "us_per_delivery": round(cpu / max(1, deliveries) * 1e6, 2),
        "seconds": round(elapsed, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = ClusterTopology(Path(tmp))
        try:
            cluster.start()
            rows = []
            for processes in (1, 2, 4, 8):
                for mode in ("classic", "sharded"):
                    rows.append(await measure(cluster, mode, processes, options.messages))
        finally:
            cluster.stop()
    print("| processes | mode | deliveries | Redis CPU µs / message | µs / delivery |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['processes']} | {row['mode']} | {row['deliveries']} | "
            f"{row['us_per_message']} | {row['us_per_delivery']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
