"""The Redis of the ``cost`` scenario: a topology started by the benchmark on loopback
(one ``redis-server``, a Sentinel-watched master with a replica, or a 3-master
Cluster; ``tests/redis_topologies.py`` starts them with the machine's
``redis-server`` 7), its CPU time from ``INFO cpu``, and which chatroom worker
process holds which client socket.

The nodes are separate processes (not chatroom's embedded Redis), so their CPU
is read apart from the server's: masters, replicas and Sentinels each summed.
They run pinned (``--cost-redis-cpus``): beside the load generator by default, so
the server's CPUs hold only chatroom's processes and a node does not move between
the server's core and the generator's from one step to the next.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.servers import is_archiver

try:
    import psutil
except ImportError:  # the cost scenario needs it; benchmarks.run says so
    psutil = None

TOPOLOGIES = ("single", "sentinel", "cluster")
#: ``--cost-redis-cpus``: the generator's CPUs, the server's, or any (unpinned).
REDIS_CPUS = ("generator", "server", "all")


def redis_cpu_set(
    choice: str, server_cpus: list[int] | None, gen_cpus: list[int] | None
) -> list[int] | None:
    """The CPUs the Redis nodes are pinned to for ``--cost-redis-cpus CHOICE``; None for
    any CPU (``all``, or a benchmark that pins nothing: ``--no-pin``, one CPU)."""
    if choice not in REDIS_CPUS:
        raise ValueError(f"unknown --cost-redis-cpus {choice!r}: one of {', '.join(REDIS_CPUS)}")
    cpus = {"generator": gen_cpus, "server": server_cpus, "all": None}[choice]
    return sorted(cpus) if cpus else None


def node_cpu_seconds(node) -> float:
    """CPU seconds (user + sys, all threads) one ``redis-server`` used since it started."""
    with node.client() as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class RedisUnderTest:
    """One Redis topology for a whole ``cost`` run: every step uses its own key prefix."""

    def __init__(self, kind: str, root: Path | None = None, cpus: list[int] | None = None) -> None:
        if kind not in TOPOLOGIES:
            raise ValueError(f"unknown Redis topology {kind!r}: one of {', '.join(TOPOLOGIES)}")
        self.kind = kind
        self.root = root or Path(tempfile.mkdtemp(prefix=f"cost-{kind}-"))
        #: Where every node runs (see ``redis_cpu_set``); None: any CPU.
        self.cpus = cpus
        self.masters: list = []
        self.replicas: list = []
        self.sentinels: list = []
        self._topology = None
        self.url = ""

    def start(self) -> RedisUnderTest:
        """Start the nodes on ``cpus`` (every CPU where None): a node and its threads
        inherit the affinity of the process that starts it, this one, which may be
        pinned to the generator's CPUs."""
        from tests.redis_topologies import ClusterTopology, RedisNode, SentinelTopology

        pinned = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.cpus or range(os.cpu_count() or 1))
        try:
            if self.kind == "single":
                # As chatroom's embedded Redis by default: an append-only file, fsync every second.
                node = RedisNode(
                    self.root / "single", "--appendonly", "yes", "--appendfsync", "everysec"
                )
                self._topology, self.masters = node, [node]
                self.url = f"redis://127.0.0.1:{node.port}/0"
            elif self.kind == "sentinel":
                topology = SentinelTopology(self.root)
                self._topology = topology
                topology.start()
                self.masters, self.replicas = [topology.master], topology.replicas
                self.sentinels = topology.sentinels
                self.url = topology.url
            else:
                topology = ClusterTopology(self.root, masters=3)
                self._topology = topology
                topology.start()
                self.masters = list(topology.nodes)
                self.url = topology.url
        finally:
            os.sched_setaffinity(0, pinned)
        return self

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: masters, replicas and Sentinels, each summed."""
        return {
            "masters": sum(node_cpu_seconds(n) for n in self.masters),
            "replicas": sum(node_cpu_seconds(n) for n in self.replicas),
            "sentinels": sum(node_cpu_seconds(n) for n in self.sentinels),
        }

    def nodes(self) -> list:
        """Every ``redis-server`` of the topology: masters, replicas, Sentinels."""
        return [*self.masters, *self.replicas, *self.sentinels]

    def affinity(self) -> list[int]:
        """The CPUs the nodes may run on, as the kernel says now (their union)."""
        cpus: set[int] = set()
        for node in self.nodes():
            cpus |= os.sched_getaffinity(node.process.pid)
        return sorted(cpus)

    def stop(self) -> None:
        if self._topology is not None:
            self._topology.stop()
            self._topology = None


def worker_processes(server_pid: int) -> list:
    """chatroom's serving processes: the forked workers, or the server itself with one
    (not the archiver child that serve starts by default: it serves no socket)."""
    root = psutil.Process(server_pid)
    workers = [p for p in root.children() if _serving(p)]
    return workers or [root]


def _serving(proc) -> bool:
    """A worker of serve (not its archiver child, not a process that just exited)."""
    try:
        return "python" in proc.name().lower() and not is_archiver(proc)
    except psutil.Error:
        return False


def socket_owners(server_pid: int, server_port: int) -> dict[int, int]:
    """Client port -> pid of the worker process that accepted that connection.

    ``chatroom serve --processes N`` binds its socket once and forks: every worker
    accepts from the same listening socket (no SO_REUSEPORT), and an accepted socket
    belongs to the worker that accepted it."""
    owners: dict[int, int] = {}
    for proc in worker_processes(server_pid):
        try:
            connections = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in connections:
            if conn.laddr and conn.raddr and conn.laddr.port == server_port:
                owners[conn.raddr.port] = proc.pid
    return owners


def tree_cpu_seconds(server_pid: int) -> dict[int, float]:
    """CPU seconds (user + sys) of the server process and of each of its workers, by pid."""
    root = psutil.Process(server_pid)
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = times.user + times.system
    return out
