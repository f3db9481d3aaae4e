"""A tiny run of the ``cost`` scenario (benchmarks/cost.py): chatroom with two worker
processes against a ``redis-server`` the benchmark starts, members spread over both
workers and then all on one; fails on a wrong placement, loss, duplicates or
disorder, or a missing CPU figure, never on timing (the figures are in
docs/performance.md)."""

from __future__ import annotations

import asyncio

import pytest
from benchmarks.cost import CostSettings, plan, run_cost
from benchmarks.cost_report import cost_rows
from benchmarks.run import _fmt
from benchmarks.scenarios import Bench, Settings

from tests.redis_topologies import require_redis_server


def test_spread_rooms_interleave_the_workers_and_one_takes_a_single_worker():
    held = {101: list(range(0, 30)), 202: list(range(30, 40)), 303: []}
    settings = CostSettings(rooms=4, members=5, senders=2)
    spread = plan(held, "spread", settings)
    assert len(spread) == 20
    rooms: dict[str, set[int]] = {}
    per_worker = {101: 0, 202: 0}
    for index, (room, _sender) in spread.items():
        rooms.setdefault(room, set()).add(101 if index < 30 else 202)
        per_worker[101 if index < 30 else 202] += 1
    assert all(workers == {101, 202} for workers in rooms.values())  # both in every room
    assert per_worker == {101: 10, 202: 10}
    assert sum(sender for _room, sender in spread.values()) == 8  # 2 a room
    one = plan(held, "one", settings)
    assert set(one) <= set(range(30)) and len(one) == 20


def small_run(**settings) -> tuple[list[dict], list[str]]:
    """The cost scenario, unpinned, on one Redis: 2 processes, members spread then on
    one worker, 2 rooms of 4; ``settings`` for the rest of ``CostSettings``; the steps
    and the log."""
    cost = CostSettings(
        topology="single", processes=(2,), placements=("spread", "one"), rooms=2, members=4,
        senders=1, rate=5.0, **settings,
    )  # fmt: skip
    lines: list[str] = []
    bench = Bench(Settings(pin=False, wait_quiet=False, interactive=False), log=lines.append)
    try:
        return asyncio.run(run_cost(bench, cost)), lines
    finally:
        bench.close()


@pytest.mark.timeout(120)
def test_cost_smoke_places_members_and_loses_nothing():
    pytest.importorskip("psutil")
    require_redis_server()
    (spread, one), lines = small_run(seconds=2.0, idle_seconds=0.5)
    assert spread["members_per_worker"] == [4, 4], lines
    assert one["members_per_worker"] == [8, 0], lines
    for result in (spread, one):
        assert result["bad"] == 0 and result["delivered"] >= result["acked"] > 0, lines
        # the parent, two workers and the archiver child (serve's default --archiver process)
        assert len(result["server_cpu_s_per_process"]) == 4
        assert result["server_us_per_delivery"] > 0
        assert result["redis_us_per_message"]["masters"] > 0
        # unpinned (pin=False): the nodes may run anywhere, and the step says where
        assert result["params"]["round"] == 1 and result["params"]["redis_cpu_set"]
    rows = cost_rows([spread, one], _fmt)
    assert [row["met"] for row in rows] == [None, None]
