"""A tiny run of issue 17's ``scale`` scenario (benchmarks/scale.py): sixty sockets in five
rooms each, idle, then a short load, on chatroom and on the bare baseline; fails on setup
failures, loss, duplicates or disorder, never on timing or CPU (the figures are in
docs/performance.md). And its summary rows, with and without the baseline's run."""

from __future__ import annotations

import asyncio

import pytest
from benchmarks.compare import socketio_rows
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


def tiny_settings() -> Settings:
    """Sixty sockets, 2 s idle, 5 senders x 2/s for 3 s."""
    return Settings(
        pin=False,
        wait_quiet=False,
        interactive=False,
        scale_sockets=60,
        scale_idle_seconds=2.0,
        scale_senders=5,
        scale_rate=2.0,
        scale_seconds=3.0,
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["chatroom", "baseline"])
def test_scale_smoke_connects_idles_and_loses_nothing(kind):
    lines: list[str] = []
    bench = Bench(tiny_settings(), log=lines.append)
    try:
        result = asyncio.run(bench.scale(kind))
    finally:
        bench.close()
    assert result["server"] == kind
    assert result["setup_failures"] == {}, lines
    assert result["open_idle"] == 60, lines
    assert result["join"]["n"] == 60  # every socket got all five ``joined``
    load = result["load"]
    bad = [load[k] for k in ("lost", "duplicates", "out_of_order", "unacked", "closed")]
    assert bad == [0, 0, 0, 0, 0] and not load["errors"], load
    # 5 senders x 2/s x 3 s, each message to every socket joined to its room.
    assert load["sent"] > 0 and load["delivered"] >= load["sent"], load
    assert "message from a room not joined" not in load["other_frames"]


def scale_result(server: str, cpu: float, kib: float, p99: float, lost: int = 0) -> dict:
    """A ``scale`` result as ``run_scale`` returns it, with the figures the rows read."""
    load = {"deliveries_per_s": 2000.0, "latency": {"p99_ms": p99}, "lost": lost}
    load.update(duplicates=0, out_of_order=0, unacked=0, closed=0, errors={})
    params = {"sockets": 400, "users": 40, "rooms": 5, "rooms_per_socket": 5}
    params.update(senders=20, rate_per_sender=1.0)
    return {
        "scenario": "scale",
        "server": server,
        "params": params,
        "setup_failures": {},
        "connect": {"p99_ms": 12.0},
        "rss_per_socket_kib": kib,
        "rss_python_per_socket_kib": kib,
        "idle_server_cpu_pct": cpu,
        "idle_python_cpu_pct": cpu,
        "load": load,
    }


def test_scale_rows_put_the_baseline_beside_chatroom_with_ratios():
    chat = scale_result("chatroom", cpu=4.0, kib=16.0, p99=30.0)
    base = scale_result("baseline", cpu=1.0, kib=8.0, p99=10.0, lost=2)
    idle, rss, load = scale_rows([base, chat], _fmt)
    assert idle["baseline"] == "1.0%; connect p99 12.0 ms"
    assert (idle["ratio"], idle["ratio_of"]) == (4.0, "idle CPU chatroom / baseline")
    assert idle["met"] is True  # judged on chatroom's 4 % alone
    assert (rss["baseline"], rss["ratio"]) == ("8.0 KiB", 2.0)
    assert rss["ratio_of"] == "RSS per socket chatroom / baseline" and rss["met"] is None
    assert load["baseline"] == "2,000/s, p99 10.0 ms, lost 2"
    assert (load["ratio"], load["ratio_of"]) == (3.0, "p99 chatroom / baseline")
    # chatroom lost nothing: met; the baseline's loss is told in the note, not hidden.
    assert load["met"] is True
    assert load["note"] == "baseline: 2 lost/dup/disorder/unacked/closed/refused"


def test_scale_rows_without_a_baseline_run_leave_its_column_empty():
    chat = scale_result("chatroom", cpu=6.0, kib=16.0, p99=30.0)
    chat["setup_failures"] = {"timeout": 3}
    rows = scale_rows([chat], _fmt)
    assert [r["target"].split(":")[0] for r in rows] == ["scale"] * 3
    assert [(r["baseline"], r["ratio"]) for r in rows] == [(None, None)] * 3
    assert rows[0]["met"] is False and rows[0]["note"] == "chatroom: 3 setup failures"
    assert rows[2]["met"] is True
    # Only a baseline (``--server baseline``): no chatroom figure to judge, no rows.
    assert scale_rows([scale_result("baseline", 1.0, 8.0, 10.0)], _fmt) == []


def test_scale_rows_say_why_an_idle_baseline_has_no_ratio():
    """The bare baseline (no timers, no pings) may idle below the sampler's 0.1 %."""
    chat = scale_result("chatroom", cpu=1.2, kib=16.0, p99=30.0)
    idle = scale_rows([scale_result("baseline", 0.0, 8.0, 10.0), chat], _fmt)[0]
    assert (idle["baseline"], idle["ratio"]) == ("0.0%; connect p99 12.0 ms", None)
    assert idle["note"] == "baseline idle CPU < 0.1 %: no ratio"


def test_a_socketio_scale_run_gets_its_own_row():
    """``--server all``: Socket.IO's idle CPU beside chatroom's, as for its other scenarios."""
    chat = scale_result("chatroom", cpu=3.0, kib=16.0, p99=30.0)
    (row,) = socketio_rows([scale_result("socketio", 1.5, 40.0, 20.0), chat], _fmt)
    assert row["target"] == "scale against Socket.IO: idle CPU of a core"
    assert (row["baseline"], row["chatroom"], row["ratio"]) == ("Socket.IO: 1.5%", "3.0%", 2.0)
