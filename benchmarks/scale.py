"""Issue 17's ``scale`` scenario: ten thousand sockets on one process, idle, then a load.

``python -m benchmarks.run --scenario scale [--scale-sockets N]`` starts, for each
server ``--server`` names (``both``, the default: the bare Tornado baseline, then
chatroom; ``all`` adds the Socket.IO baseline), one fresh process (pinned like
the others; chatroom with ``--max-connections`` above N) and, on each, in one run:

1. connects N sockets (default 10,000: N/10 users with 10 sockets each), 100
   at a time, each joining 5 of R = max(5, N/200) rooms (so each room holds
   N/10 sockets): connect time (TCP connect to ``hello``) and join time (all
   5 ``joined``) percentiles, and failures;
2. holds them idle (``--scale-idle-seconds``, default 50: two whole rounds of the
   server's pings, every 25 s; a 30 s hold held one round or two, by chance): the
   server's CPU (% of one core; its Python processes alone too, i.e. chatroom without its
   embedded Redis) over the hold, which for chatroom includes the presence
   ticks and at least one round of pings (the baselines: none and
   Engine.IO's, see docs/performance.md), and RSS per socket (RSS after minus
   RSS before the N sockets, divided by N);
3. runs a steady load on top: 20 senders, ``--scale-rate`` messages a second
   each (default 1) into their first room, for 20 s; each message reaches
   N/10 sockets. The same loss, duplicate and order checks as every scenario,
   per socket and per room, for every server.

Targets (issue 17): idle CPU <= 5 % of a core with every socket connected
(chatroom's); the baseline's figures stand beside it, with chatroom / baseline.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks.compare import ratio
from benchmarks.generator import ClientSpec, faults
from benchmarks.servers import room_name, serve_supports

#: Issue 17: idle CPU with every socket connected, % of one core.
SCALE_IDLE_CPU_PCT = 5.0
#: Rooms each socket joins.
ROOMS_PER_SOCKET = 5
#: Sockets connected first, before the RSS baseline is taken (imports, caches warm).
WARM_SOCKETS = 20


def plan(sockets: int) -> tuple[int, int]:
    """(users, rooms) for ``sockets`` sockets: 10 sockets a user, N/10 sockets a room."""
    users = max(1, sockets // 10)
    rooms = max(ROOMS_PER_SOCKET, sockets // 200)
    return users, rooms


def scale_specs(accounts: dict, sockets: int, rooms: int, senders: int) -> list[ClientSpec]:
    """Socket i: user i mod U, rooms 5i .. 5i+4 mod R (the first is where it sends)."""
    users, tokens = accounts["users"], accounts["tokens"]
    specs = []
    for i in range(sockets):
        base = (i * ROOMS_PER_SOCKET) % rooms
        names = [room_name((base + k) % rooms) for k in range(ROOMS_PER_SOCKET)]
        u = i % len(users)
        specs.append(ClientSpec(i, users[u], tokens[u], names[0], i < senders, tuple(names[1:])))
    return specs


async def run_scale(bench, kind: str = "chatroom") -> dict:
    """The whole scenario on one fresh server of ``kind``; the result row."""
    s = bench.s
    n = s.scale_sockets
    users, rooms = plan(n)
    senders = min(s.scale_senders, n)
    extra_args = []
    # chatroom's default is 10,000 sockets a process; the baselines have no such limit.
    if kind == "chatroom" and serve_supports("--max-connections"):
        extra_args = ["--max-connections", str(n + 2 * WARM_SOCKETS + 100)]
    name = f"scale/{kind}/{n}"
    async with bench.server(kind, users, rooms, extra_args=extra_args) as (
        server,
        accounts,
        sampler,
    ):
        specs = scale_specs(accounts, n + WARM_SOCKETS, rooms, senders)
        warm_specs, main_specs = specs[n:], specs[:n]
        warm_gen = bench.generator(server, warm_specs)
        gen = bench.generator(server, main_specs)
        await warm_gen.start()
        await gen.start()
        try:
            await bench.connect_and_join(warm_gen, f"scale/{kind} warm-up")
            await asyncio.sleep(1.0)
            await bench.quiet()
            rss0, rss0_py = sampler.rss_now()
            started = time.monotonic()
            setup = await bench.connect_and_join(gen, name, concurrency=100)
            setup_s = time.monotonic() - started
            await asyncio.sleep(3.0)  # the joins' presence announcements settle
            await bench.quiet()
            t_hold = time.monotonic()
            await asyncio.sleep(s.scale_idle_seconds)
            t_end = time.monotonic()
            rss1, rss1_py = sampler.rss_now()
            idle = sampler.window(t_hold, t_end)
            open_idle = await gen.open_count()
            bench.log(
                f"  {name}: {open_idle} open; idle {s.scale_idle_seconds:.0f}s: server CPU "
                f"{idle.get('cpu_pct')}% (python {idle.get('cpu_python_pct')}%), other load "
                f"{idle.get('other_load_pct')}%; RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB"
            )
            await bench.quiet()
            label = f"{name} load"
            phase = gen.send_phase(
                s.scale_rate, s.scale_seconds, s.text_bytes, 15.0, bench.ticker(label)
            )
            stats = await bench.profiled(server, label, s.scale_seconds, phase)
            bench.end_ticks()
            use = sampler.window(*stats.pop("window"))
        finally:
            await gen.stop()
            await warm_gen.stop()
    params = {
        "sockets": n,
        "users": users,
        "rooms": rooms,
        "rooms_per_socket": ROOMS_PER_SOCKET,
        "idle_seconds": s.scale_idle_seconds,
        "senders": senders,
        "rate_per_sender": s.scale_rate,
        "seconds": s.scale_seconds,
    }
    load = bench._result("scale-load", kind, params, setup, stats, use)
    result = {
        "scenario": "scale",
        "server": kind,
        "params": params,
        **setup,
        "setup_s": round(setup_s, 1),
        "open_idle": open_idle,
        "rss_before_mib": round(rss0 / 2**20, 1),
        "rss_after_mib": round(rss1 / 2**20, 1),
        "rss_per_socket_kib": round((rss1 - rss0) / n / 1024, 1) if rss1 else None,
        "rss_python_per_socket_kib": round((rss1_py - rss0_py) / n / 1024, 1) if rss1 else None,
        "idle_server_cpu_pct": idle.get("cpu_pct"),
        # The server's Python processes: chatroom without its embedded Redis; a baseline whole.
        "idle_python_cpu_pct": idle.get("cpu_python_pct"),
        "idle_usage": idle,
        "load": load,
    }
    bench.log(
        f"  -> {name}: connect p99 {setup['connect']['p99_ms']} ms, join (5 rooms) p99 "
        f"{setup['join']['p99_ms']} ms; {result['rss_per_socket_kib']} KiB/socket; idle CPU "
        f"{result['idle_server_cpu_pct']}% (python {result['idle_python_cpu_pct']}%); load "
        f"{load['deliveries_per_s']}/s p99 {load['latency']['p99_ms']} ms lost {load['lost']}"
    )
    return result


def faults_note(runs: list[dict | None], setup: bool) -> str:
    """The runs' setup failures (``setup``) or load faults, for a summary note ("" if none)."""
    out = []
    for r in filter(None, runs):
        n = sum(r["setup_failures"].values()) if setup else faults(r["load"])
        what = "setup failures" if setup else "lost/dup/disorder/unacked/closed/refused"
        out += [f"{r['server']}: {n} {what}"] if n else []
    return "; ".join(out)


def idle_note(b: dict | None) -> str:
    """Why the idle CPU row has no ratio though the baseline ran: it used no measurable CPU
    (the sampler's resolution is 0.1 % of a core; the bare baseline has no timers, no pings)."""
    return "baseline idle CPU < 0.1 %: no ratio" if b and b["idle_server_cpu_pct"] == 0 else ""


def scale_rows(results: list[dict], fmt) -> list[dict]:
    """The summary rows of a ``scale`` run (``fmt`` formats a number): idle CPU, RSS per
    socket and the load on top; chatroom's, with the bare baseline's beside them when the
    run has one (ratios chatroom / baseline). Targets are judged on chatroom's figures."""
    runs = {r["server"]: r for r in results if r["scenario"] == "scale"}
    r, b = runs.get("chatroom"), runs.get("baseline")
    if r is None:
        return []
    p, load = r["params"], r["load"]
    cpu = r["idle_server_cpu_pct"]
    failures = sum(r["setup_failures"].values())
    sockets = f"{p['sockets']:,} sockets"
    return [
        {
            "target": f"scale: idle CPU ≤ {SCALE_IDLE_CPU_PCT:.0f}% of a core with "
            f"{sockets} connected ({p['users']:,} users, {p['rooms_per_socket']} "
            f"rooms each of {p['rooms']})",
            "baseline": b
            and f"{fmt(b['idle_server_cpu_pct'], '%')}; "
            f"connect p99 {fmt(b['connect']['p99_ms'], ' ms')}",
            "chatroom": f"{fmt(cpu, '%')} (without Redis {fmt(r['idle_python_cpu_pct'], '%')}); "
            f"connect p99 {fmt(r['connect']['p99_ms'], ' ms')}",
            "ratio": ratio(cpu, b and b["idle_server_cpu_pct"]),
            "ratio_of": "idle CPU chatroom / baseline",
            "met": cpu is not None and cpu <= SCALE_IDLE_CPU_PCT and failures == 0,
            "note": "; ".join(filter(None, (faults_note([r, b], setup=True), idle_note(b)))),
        },
        {
            "target": f"scale: RSS per idle socket ({sockets}; chatroom with its Redis)",
            "baseline": b and fmt(b["rss_per_socket_kib"], " KiB"),
            "chatroom": f"{fmt(r['rss_per_socket_kib'], ' KiB')} "
            f"(Python {fmt(r['rss_python_per_socket_kib'], ' KiB')})",
            "ratio": ratio(r["rss_per_socket_kib"], b and b["rss_per_socket_kib"]),
            "ratio_of": "RSS per socket chatroom / baseline",
            "met": None,
            "note": "",
        },
        {
            "target": f"scale: load on top ({p['senders']} senders × {p['rate_per_sender']}/s), "
            "0 loss",
            "baseline": b
            and f"{fmt(b['load']['deliveries_per_s'])}/s, p99 "
            f"{fmt(b['load']['latency']['p99_ms'], ' ms')}, lost {b['load']['lost']}",
            "chatroom": f"{fmt(load['deliveries_per_s'])}/s, p99 "
            f"{fmt(load['latency']['p99_ms'], ' ms')}, lost {load['lost']}",
            "ratio": ratio(load["latency"]["p99_ms"], b and b["load"]["latency"]["p99_ms"]),
            "ratio_of": "p99 chatroom / baseline",
            "met": faults(r["load"]) == 0,
            "note": faults_note([r, b], setup=False),
        },
    ]
