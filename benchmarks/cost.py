"""The ``cost`` scenario (issue 17 target 3, issue 16's speed): what one delivery costs
the server, and one message costs Redis, as ``chatroom serve --processes`` grows.

For each process count (1, 2, 4, 8) chatroom serves against a Redis topology the
benchmark starts (``cost_redis.py``: single, sentinel or cluster), each step under
its own ``--redis-prefix``, and the generator drives the same fixed load, well
below saturation: ``rooms`` rooms of ``members`` sockets, ``senders`` senders a
room at ``rate`` msg/s each. Where the sockets land is chosen, not left to chance:
the server's workers share one listening socket (see ``cost_redis.socket_owners``),
so the generator opens a pool of sockets, reads which worker accepted each, and
reconnects some until the placement holds:

* ``spread``: every worker holds members, as evenly as the pool allows, and every
  room has members on as many workers as it can (the rooms interleave workers);
* ``one``: every member is on one worker; the others hold no socket at all (issue
  16: what a message costs Redis for processes with no member in its room).

Per step: deliveries/s, loss/dup/disorder (must be 0), the server's CPU µs per
delivery (every worker process summed), Redis CPU µs per published message
(``INFO cpu`` user + sys; masters summed, replicas and Sentinels apart), and each
figure's ratio to the one-process step. With the server pinned to one CPU (a
2-core machine) these are cost figures, not throughput.

``--cost-server relay`` (or ``both``: chatroom then the relay at each step) measures
the same way the relay (``relay_server.py``): a Tornado + Redis server with N forked
processes that does only what N processes must (one Redis round trip a message, a
subscription a room per process, a write per local member). Its growth with N is
the method's floor: N Python processes on one core, each woken for every event.
Each server's ratios are to its own one-process steps.

``--cost-rounds R`` runs the list of process counts R times, interleaved (1, 2, 4, 8,
1, 2, 4, 8, ...), so that a disturbance lands on one round of a count rather than on
every step of it; the ratios and summary rows then use each count's median over the
rounds (``cost_report.cost_medians``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass

from benchmarks import servers
from benchmarks.cost_redis import (
    REDIS_CPUS,
    TOPOLOGIES,
    RedisUnderTest,
    psutil,
    redis_cpu_set,
    socket_owners,
    tree_cpu_seconds,
    worker_processes,
)
from benchmarks.cost_report import add_ratios, cost_table
from benchmarks.generator import ClientSpec, faults
from benchmarks.servers import room_name

PLACEMENTS = ("spread", "one")
#: ``--cost-server``: chatroom, the relay (``relay_server.py``: the method's floor), or both.
SERVERS = ("chatroom", "relay")
#: Reconnect rounds at most, to place the sockets.
MAX_ROUNDS = 40


@dataclass
class CostSettings:
    """The ``cost`` scenario's options (``--cost-*``, ``--redis-topology``)."""

    topology: str = "single"
    processes: tuple[int, ...] = (1, 2, 4, 8)
    placements: tuple[str, ...] = ("spread",)
    rooms: int = 16
    members: int = 12
    senders: int = 2
    rate: float = 20.0
    seconds: float = 10.0
    #: Before the load, the joined sockets sit silent this long: the fixed cost per second
    #: (timers, heartbeats, the archiver's polls) that the marginal figures leave out.
    idle_seconds: float = 3.0
    #: Sockets opened per member needed, so that every worker gets enough.
    pool_factor: float = 1.5
    #: Times the list of process counts runs, interleaved.
    rounds: int = 1
    #: Where the Redis nodes run: ``REDIS_CPUS``.
    redis_cpus: str = "generator"
    #: The servers measured, each step run for each in turn (``SERVERS``).
    servers: tuple[str, ...] = ("chatroom",)


def parse_processes(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> (1, 2, 4, 8)."""
    counts = tuple(int(part) for part in text.split(",") if part.strip())
    if not counts or min(counts) < 1:
        raise ValueError(f"--cost-processes wants counts >= 1, e.g. 1,2,4,8 (got {text!r})")
    return counts


def parse_rounds(text: str) -> int:
    """``--cost-rounds``: a count >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"--cost-rounds wants a count >= 1 (got {text!r})")
    return int(text)


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    """The ``cost`` scenario's options (benchmarks/cost.py)."""
    parser.add_argument(
        "--redis-topology", choices=TOPOLOGIES, default="single",
        help="cost: the Redis the benchmark starts (single, sentinel: master + replica + 3 "
        "Sentinels, cluster: 3 masters)",
    )  # fmt: skip
    parser.add_argument(
        "--cost-processes", type=parse_processes, default=(1, 2, 4, 8), metavar="1,2,4,8",
        help="cost: the --processes counts, in order",
    )  # fmt: skip
    parser.add_argument(
        "--cost-placement", choices=(*PLACEMENTS, "both"), default="spread",
        help="cost: members on every worker (spread) or all on one worker (one)",
    )  # fmt: skip
    parser.add_argument(
        "--cost-rounds", type=parse_rounds, default=1, metavar="R",
        help="cost: run the process counts R times, interleaved; ratios from the medians",
    )  # fmt: skip
    parser.add_argument(
        "--cost-redis-cpus", choices=REDIS_CPUS, default="generator",
        help="cost: pin the Redis nodes to the generator's CPUs, the server's, or none (all)",
    )  # fmt: skip
    parser.add_argument(
        "--cost-server", choices=(*SERVERS, "both"), default="chatroom",
        help="cost: chatroom, the relay (benchmarks/relay_server.py: the least a Tornado + "
        "Redis server with N processes does, the floor), or both, interleaved step by step",
    )  # fmt: skip
    parser.add_argument("--cost-rooms", type=int, help="cost: rooms (16)")
    parser.add_argument("--cost-members", type=int, help="cost: sockets a room (12)")
    parser.add_argument("--cost-senders", type=int, help="cost: senders a room (2)")
    parser.add_argument("--cost-rate", type=float, help="cost: msg/s per sender (20)")
    parser.add_argument("--cost-seconds", type=float, help="cost: seconds of load a step (10)")
    parser.add_argument(
        "--cost-idle-seconds", type=float, help="cost: silent seconds measured before the load (3)"
    )


def cost_settings(args: argparse.Namespace) -> CostSettings:
    placements = PLACEMENTS if args.cost_placement == "both" else (args.cost_placement,)
    cost = CostSettings(args.redis_topology, args.cost_processes, placements)
    cost.rounds, cost.redis_cpus = args.cost_rounds, args.cost_redis_cpus
    cost.servers = SERVERS if args.cost_server == "both" else (args.cost_server,)
    for attr in ("rooms", "members", "senders", "rate", "seconds", "idle_seconds"):
        if getattr(args, f"cost_{attr}") is not None:
            setattr(cost, attr, getattr(args, f"cost_{attr}"))
    return cost


async def place(gen, server, placement: str, needed: int, log) -> tuple[dict, list[int]]:
    """Connect the pool and reconnect sockets until ``placement`` holds; the sockets
    of each worker (pid -> client indices, every worker listed), and how many sockets
    each worker accepted of the first connect (the kernel's choice, largest first)."""
    pids = await all_workers(server)
    await gen.connect(concurrency=50)
    rounds = 0
    while True:
        ports = await gen.local_ports()
        owners = socket_owners(server.pid, server.port)
        held: dict[int, list[int]] = {pid: [] for pid in pids}
        for index, port in sorted(ports.items()):
            if owners.get(port) in held:
                held[owners[port]].append(index)
        if rounds == 0:
            first = sorted((len(v) for v in held.values()), reverse=True)
        if placement == "one":
            target = max(pids, key=lambda pid: len(held[pid]))
            short = needed - len(held[target])
            surplus = [i for pid in pids if pid != target for i in held[pid]]
        else:
            quota = math.ceil(needed / len(pids))
            short = sum(max(0, quota - len(held[pid])) for pid in pids)
            surplus = [i for pid in pids for i in held[pid][quota:]]
        if short <= 0 or not surplus or rounds >= MAX_ROUNDS:
            break
        rounds += 1
        if any(not held[pid] for pid in pids):
            # A worker with no socket at all may still be starting (serve answers
            # /healthz as soon as one worker does): give it time to accept.
            await asyncio.sleep(min(0.05 * rounds, 0.5))
        await gen.all("release", indices=surplus)
        await gen.connect(concurrency=50, which="unconnected")
    counts = sorted((len(v) for v in held.values()), reverse=True)
    log(
        f"  placement {placement}: sockets per worker {counts} after {rounds} reconnect "
        f"round(s); the first connect of {sum(first)} landed {first}"
    )
    return held, first


async def all_workers(server, timeout: float = 10.0) -> list[int]:
    """The pids of serve's workers once all ``server.processes`` of them are up (a
    server answers /healthz as soon as one is; one still starting would get no
    socket), or of those there are after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [p.pid for p in worker_processes(server.pid)]
        if len(pids) >= server.processes or time.monotonic() > deadline:
            return pids
        await asyncio.sleep(0.1)


def plan(held: dict[int, list[int]], placement: str, s: CostSettings) -> dict:
    """Client index -> (room, sender). ``spread``: seat k of room r goes to worker
    (r + k) mod workers (the next one with sockets left where that one has none), so
    every room has members on every worker it can and the workers hold about as many
    members each; ``one``: every member from the worker with the most sockets."""
    lists = [list(x) for x in held.values() if x]
    if placement == "one":
        lists = [max(lists, key=len)] if lists else []
    out: dict[int, tuple[str, bool]] = {}
    for seat in range(s.members):
        for room in range(s.rooms):
            for step in range(len(lists)):
                pool = lists[(room + seat + step) % len(lists)]
                if pool:
                    out[pool.pop(0)] = (room_name(room), seat < s.senders)
                    break
    return out


def placement_held(placement: str, members: list[int], processes: int | None = None) -> bool:
    """Whether the members sit as ``placement`` asks: all on one worker (``one``), or
    some on every one of the ``processes`` workers (``spread``; a worker missing from
    ``members`` holds none); ``place`` gives up after its reconnect rounds."""
    if placement == "one":
        return sorted(members, reverse=True)[1:2] in ([], [0])
    if processes is not None and len(members) < processes:
        return False
    return bool(members) and min(members) > 0


async def cost_step(
    bench, redis: RedisUnderTest, s: CostSettings, placement, n, step, round_=1, kind="chatroom"
) -> dict:
    """One process count: start ``kind`` (chatroom or the relay) on the topology, place,
    join, send, measure."""
    needed = s.rooms * s.members
    pool = max(needed + n, math.ceil(needed * s.pool_factor))
    users = min(pool, bench.s.users_cap)
    extra = ["--redis-url", relay_url(redis) if kind == "relay" else redis.url]
    extra += ["--redis-prefix", f"cost{step}"]
    if (
        kind == "chatroom"
        and "--archiver" not in servers.CHATROOM_ARGS
        and servers.serve_supports("--archiver")
    ):
        # The archiver where the figures of every step so far had it (its own process,
        # serve's default with two CPUs): what varies from step to step is only the
        # workers. Pinned to one CPU, ``auto`` would put it in every worker.
        extra += ["--archiver", "process"]
    label = f"cost/{kind}/{s.topology}/{placement} x{n}"
    label += f" round {round_}" if s.rounds > 1 else ""
    async with bench.server(kind, users, s.rooms, n, True, extra) as (server, acc, sampler):
        specs = [
            ClientSpec(i, acc["users"][i % users], acc["tokens"][i % users], room_name(0), False)
            for i in range(pool)
        ]
        gen = bench.generator(server, specs)
        await gen.start()
        try:
            held, first = await place(gen, server, placement, needed, bench.log)
            assignment = plan(held, placement, s)
            await gen.all("assign", plan=assignment)
            members = {
                pid: sum(1 for i in indices if i in assignment) for pid, indices in held.items()
            }
            joined = await gen.join(concurrency=50)
            bench.log(
                f"  {label}: {joined['hist'].n} joined"
                f"{' FAILURES ' + str(joined['failures']) if joined['failures'] else ''}"
            )
            setup = {"join": joined["hist"].summary(), "setup_failures": joined["failures"]}
            await bench.quiet()
            idle = await idle_cost(redis, server.pid, s.idle_seconds)
            redis0, server0 = redis.cpu(), tree_cpu_seconds(server.pid)
            started = time.monotonic()
            stats = await gen.send_phase(s.rate, s.seconds, bench.s.text_bytes, 10.0,
                                         bench.ticker(label))  # fmt: skip
            bench.end_ticks()
            redis1, server1 = redis.cpu(), tree_cpu_seconds(server.pid)
            wall = time.monotonic() - started
        finally:
            await gen.stop()
        use = sampler.window(*stats.pop("window"))
    server_s = {pid: server1[pid] - server0.get(pid, 0.0) for pid in server1}
    redis_s = {k: redis1[k] - redis0[k] for k in redis1}
    published, delivered = max(1, stats["acked"]), max(1, stats["delivered"])
    server_total = sum(server_s.values())
    # Marginal: less what the same sockets cost silent for as long (the idle rate).
    server_marginal = server_total - idle["server_per_s"] * wall
    redis_marginal = {k: v - idle["redis_per_s"][k] * wall for k, v in redis_s.items()}
    result = {
        "scenario": "cost",
        "server": kind,
        "params": {
            "server": kind,
            "topology": s.topology,
            "placement": placement,
            "processes": n,
            "rooms": s.rooms,
            "members": s.members,
            "senders_per_room": s.senders,
            "rate_per_sender": s.rate,
            "seconds": s.seconds,
            "chatroom_args": list(servers.CHATROOM_ARGS) if kind == "chatroom" else [],
            "pinned": bool(bench.server_cpus),
            "round": round_,
            "redis_cpus": s.redis_cpus,
            "redis_cpu_set": redis.affinity(),
        },
        **setup,
        **stats,
        "members_per_worker": sorted(members.values(), reverse=True),
        "placement_held": placement_held(placement, list(members.values()), n),
        "measured_s": round(wall, 2),
        "server_usage": use,
        "server_cpu_s": round(sum(server_s.values()), 3),
        "server_cpu_s_per_process": sorted((round(v, 3) for v in server_s.values()), reverse=True),
        "server_us_per_delivery": round(server_total / delivered * 1e6, 2),
        "server_marginal_us_per_delivery": round(server_marginal / delivered * 1e6, 2),
        "redis_cpu_s": {k: round(v, 3) for k, v in redis_s.items()},
        "redis_us_per_message": {k: round(v / published * 1e6, 2) for k, v in redis_s.items()},
        "redis_marginal_us_per_message": {
            k: round(v / published * 1e6, 2) for k, v in redis_marginal.items()
        },
        "idle": idle,
        "first_connect_per_worker": first,
        "bad": faults(stats),
    }
    redis_us = result["redis_us_per_message"]
    bench.log(
        f"  -> {label}: {stats['deliveries_per_s']:.0f} deliveries/s, lost {stats['lost']} "
        f"dup {stats['duplicates']} disorder {stats['out_of_order']} bad {result['bad']}; "
        f"server {result['server_us_per_delivery']} µs/delivery; Redis µs/message masters "
        f"{redis_us['masters']} replicas {redis_us['replicas']} sentinels "
        f"{redis_us['sentinels']}; members per worker {result['members_per_worker']}, CPU s "
        f"per process {result['server_cpu_s_per_process']}; "
        f"other load {use.get('other_load_pct')}%"
    )
    return result


def relay_url(redis: RedisUnderTest) -> str:
    """The relay's Redis: the master itself (it speaks neither Sentinel nor Cluster; the
    scenario fails no node over, so a Sentinel topology's master is all it needs)."""
    return f"redis://127.0.0.1:{redis.masters[0].port}/0"


async def run_cost(bench, s: CostSettings) -> list[dict]:
    """Every placement and process count on one topology, for each server; ratios to the
    server's one-process step."""
    if psutil is None:
        raise RuntimeError("cost needs psutil: pip install -r benchmarks/requirements.txt")
    if "relay" in s.servers and s.topology == "cluster":
        raise ValueError("--cost-server relay runs on --redis-topology single or sentinel")
    cpus = redis_cpu_set(s.redis_cpus, bench.server_cpus, bench.gen_cpus)
    redis = RedisUnderTest(s.topology, bench.workspace.path / f"redis-{s.topology}", cpus)
    bench.log(f"  starting Redis ({s.topology}) on CPUs {cpus or 'any'} ({s.redis_cpus}) ...")
    redis.start()
    results: list[dict] = []
    try:
        step = 0
        for placement in s.placements:
            for round_ in range(1, s.rounds + 1):
                for n in s.processes:
                    for kind in s.servers:
                        step += 1
                        results.append(
                            await cost_step(bench, redis, s, placement, n, step, round_, kind)
                        )
    finally:
        redis.stop()
    add_ratios(results)
    bench.log("\n" + cost_table(results))
    return results


async def idle_cost(redis: RedisUnderTest, server_pid: int, seconds: float) -> dict:
    """CPU seconds per second that the server (every process) and Redis spend while the
    joined sockets are silent."""
    if seconds <= 0:
        return {"seconds": 0.0, "server_per_s": 0.0, "redis_per_s": dict.fromkeys(redis.cpu(), 0.0)}
    redis0, server0, t0 = redis.cpu(), tree_cpu_seconds(server_pid), time.monotonic()
    await asyncio.sleep(seconds)
    redis1, server1 = redis.cpu(), tree_cpu_seconds(server_pid)
    wall = time.monotonic() - t0
    server = sum(server1.values()) - sum(server0.get(pid, 0.0) for pid in server1)
    return {
        "seconds": round(wall, 2),
        "server_per_s": round(server / wall, 5),
        "redis_per_s": {k: round((redis1[k] - redis0[k]) / wall, 5) for k in redis1},
    }
