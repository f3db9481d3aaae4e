"""A tiny run of issue 17's ``scale`` scenario (benchmarks/scale.py): sixty sockets in five
rooms each, idle, then a short load; fails on setup failures, loss, duplicates or
disorder, never on timing or CPU (the figures are in docs/performance.md)."""

from __future__ import annotations

import asyncio

import pytest
from benchmarks.run import _fmt
from benchmarks.scale import ROOMS_PER_SOCKET, plan, scale_rows, scale_specs
from benchmarks.scenarios import Bench, Settings


def test_the_plan_spreads_sockets_over_users_and_rooms():
    users, rooms = plan(10_000)
    assert (users, rooms) == (1_000, 50)
    accounts = {"users": [f"u{i}" for i in range(users)], "tokens": [f"t{i}" for i in range(users)]}
    specs = scale_specs(accounts, 10_000, rooms, senders=20)
    per_user: dict[str, int] = {}
    per_room: dict[str, int] = {}
    for spec in specs:
        per_user[spec.user] = per_user.get(spec.user, 0) + 1
        joined = (spec.room, *spec.extra_rooms)
        assert len(set(joined)) == ROOMS_PER_SOCKET
        for room in joined:
            per_room[room] = per_room.get(room, 0) + 1
    assert set(per_user.values()) == {10}  # 1,000 users x 10 sockets
    assert set(per_room.values()) == {1_000}  # each room: a tenth of the sockets
    assert sum(spec.sender for spec in specs) == 20


@pytest.mark.timeout(240)
def test_scale_smoke_connects_idles_and_loses_nothing():
    settings = Settings(
        pin=False,
        wait_quiet=False,
        interactive=False,
        scale_sockets=60,
        scale_idle_seconds=2.0,
        scale_senders=5,
        scale_rate=2.0,
        scale_seconds=3.0,
    )
    lines: list[str] = []
    bench = Bench(settings, log=lines.append)
    try:
        result = asyncio.run(bench.scale())
    finally:
        bench.close()
    assert result["setup_failures"] == {}, lines
    assert result["open_idle"] == 60, lines
    assert result["join"]["n"] == 60  # every socket got all five ``joined``
    load = result["load"]
    bad = [load[k] for k in ("lost", "duplicates", "out_of_order", "unacked", "closed")]
    assert bad == [0, 0, 0, 0, 0] and not load["errors"], load
    # 5 senders x 2/s x 3 s, each message to every socket joined to its room.
    assert load["sent"] > 0 and load["delivered"] >= load["sent"], load
    assert "message from a room not joined" not in load["other_frames"]
    rows = scale_rows([result], _fmt)
    assert [r["target"].split(":")[0] for r in rows] == ["scale", "scale"]
