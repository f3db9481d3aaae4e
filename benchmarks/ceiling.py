"""The ``ceiling`` scenario: a ramp whose top is the machine, not a fixed last step.

The load of ``ramp`` (200 clients in 10 rooms, 20 senders) starts at
``ramp_start_rate`` msg/s per sender and grows by ``CEILING_FACTOR`` per step, with
no planned last step, until a step fails — p99 ≥ ``RAMP_P99_MS`` or anything
lost, doubled, reordered, unacked, closed or refused, confirmed by a repeat as
in ``ramp`` — or the generator saturates (the machine has no CPU left to drive
more), or a safety cap is hit (``CEILING_MAX_STEPS`` steps or
``CEILING_MAX_SECONDS`` per server). No bisection: the figure is the **last
sustained step**, at most a factor 1.25 below the true ceiling. Every step also says
whether the server was CPU-saturated (``server_saturated``), so a result tells
a server that ran out of CPU from one that failed before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from benchmarks.scenarios import RAMP_P99_MS

if TYPE_CHECKING:
    from benchmarks.scenarios import Bench

CEILING_FACTOR = 1.25
#: Safety caps: 20 msg/s * 1.25**40 is ~150,000 msg/s per sender, past any server here.
CEILING_MAX_STEPS = 40
CEILING_MAX_SECONDS = 900.0
#: A Python process at this share of its core (or the server at this share of its
#: pinned CPUs) is CPU-saturated.
SERVER_SATURATED_PCT = 90.0


def server_saturated(usage: dict, processes: int, cpus: list[int] | None) -> bool:
    """The server used (nearly) all the CPU it can: every Python process its core, or
    all of its pinned CPUs."""
    python = usage.get("cpu_python_pct") or 0.0
    total = usage.get("cpu_pct") or 0.0
    if python >= SERVER_SATURATED_PCT * processes:
        return True
    return bool(cpus) and total >= SERVER_SATURATED_PCT * len(cpus)


def stop_reason(stats: dict) -> str:
    """Why a failed step failed."""
    p99 = stats["latency"]["p99_ms"] or 0.0
    return f"p99 {p99} ms" if p99 >= RAMP_P99_MS else f"{stats['bad']} bad"


async def ceiling(bench: Bench, kind: str) -> dict:
    """Ramp ``kind`` up to its ceiling on this machine; the last sustained step."""
    s = bench.s
    name = f"ceiling/{kind}"
    steps: list[dict] = []
    sustained: dict | None = None
    why = f"safety cap ({CEILING_MAX_STEPS} steps)"
    users = min(s.steady_clients, s.users_cap)
    async with bench.server(kind, users, s.steady_rooms) as (server, accounts, sampler):
        specs = bench.specs(accounts, s.steady_clients, s.steady_rooms, s.steady_senders)
        gen = bench.generator(server, specs)
        await gen.start()
        try:
            setup = await bench.connect_and_join(gen, name)
            await bench.quiet()
            started, rate = time.monotonic(), s.ramp_start_rate

            async def step(rate: float) -> dict:
                stats = await bench.ramp_step(gen, server, sampler, name, rate, steps)
                use = stats["server_usage"]
                stats["server_saturated"] = server_saturated(
                    use, server.processes, bench.server_cpus
                )
                return stats

            for _ in range(CEILING_MAX_STEPS):
                stats = await bench.confirmed_step(step, rate)
                if not stats["passed"]:
                    why = stop_reason(stats)
                    break
                sustained = stats
                if stats["generator_saturated"]:
                    why = "generator saturated"
                    break
                if time.monotonic() - started >= CEILING_MAX_SECONDS:
                    why = f"safety cap ({CEILING_MAX_SECONDS:.0f} s)"
                    break
                rate *= CEILING_FACTOR
        finally:
            await gen.stop()
    saturated_at = next((st["rate_per_sender"] for st in steps if st["server_saturated"]), None)
    result = {
        "scenario": "ceiling",
        "server": kind,
        "params": {
            "clients": s.steady_clients,
            "rooms": s.steady_rooms,
            "senders": s.steady_senders,
            "start_rate_per_sender": s.ramp_start_rate,
            "factor": CEILING_FACTOR,
            "step_seconds": s.ramp_step_seconds,
            "p99_limit_ms": RAMP_P99_MS,
            "gen_procs": s.gen_procs,
            "pinned": bool(bench.server_cpus),
        },
        **setup,
        "max_deliveries_per_s": sustained["deliveries_per_s"] if sustained else 0.0,
        "max_rate_per_sender": sustained["rate_per_sender"] if sustained else 0.0,
        "best_step": sustained,  # the last sustained step (what run.py's tables read)
        "stop_reason": why,
        "server_saturated_at_rate": saturated_at,
        "generator_saturated": bool(sustained and sustained["generator_saturated"]),
        "steps": steps,
    }
    bench.log(
        f"  -> {name}: last sustained step {result['max_deliveries_per_s']:.0f} deliveries/s "
        f"({result['max_rate_per_sender']}/s per sender, {len(steps)} steps); stopped: {why}; "
        f"server CPU-saturated from {saturated_at or '-'}/s per sender"
    )
    return result
