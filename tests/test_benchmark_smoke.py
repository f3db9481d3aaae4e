"""The benchmarks' smoke checks: CI's 10-second steady run against chatroom and a short one
against the Socket.IO baseline fail on loss, duplicates or disorder, never on timing
(benchmarks/smoke.py); and the generator's order checks, gen-procs auto, the ceiling's
saturation test (the full benchmark is in docs/performance.md)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest
from benchmarks import run
from benchmarks.ceiling import server_saturated
from benchmarks.generator import RoomSeen
from benchmarks.servers import auto_gen_procs
from benchmarks.smoke import run_smoke


@pytest.mark.timeout(120)
def test_steady_smoke_loses_doubles_and_reorders_nothing():
    result = run_smoke(seconds=10)
    assert result["delivered"] > 0 and result["sent"] > 0, result
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0), result
    assert result["ok"], result


@pytest.mark.timeout(60)
def test_socketio_baseline_smoke_delivers_everything_in_order():
    """The Socket.IO baseline and the generator's Socket.IO framing (benchmarks/sioclient.py):
    every message reaches every socket of its room, acked, none lost, doubled or reordered."""
    pytest.importorskip("socketio")
    result = run_smoke(seconds=2, clients=12, rooms=3, senders=3, rate=10.0, server="socketio")
    assert result["sent"] > 0 and result["delivered"] == result["expected_deliveries"], result
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0), result
    assert result["ok"], result


def test_order_checks_count_holes_late_fills_duplicates_and_loss():
    """One helper (RoomSeen) checks every room's ids, a client's own room included."""
    worker = SimpleNamespace(out_of_order=0, duplicates=0, lost_overflow=0)
    seen = RoomSeen()
    delivered = [seen.see(mid, worker) for mid in (1, 2, 5, 3, 3, 6)]
    assert delivered == [True, True, True, True, False, True]
    assert (worker.out_of_order, worker.duplicates) == (1, 1)
    assert seen.behind(8) == 1 + 2  # 4 is a hole; 7 and 8 never came
    assert seen.write_off(8) == 3 and seen.behind(8) == 0


def test_gen_procs_auto_is_one_per_cpu_left_to_the_generator():
    assert run.gen_procs("auto") == 0  # Bench resolves 0 with auto_gen_procs
    assert run.gen_procs("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            run.gen_procs(bad)
    assert auto_gen_procs([1]) == 1  # 2 CPUs: the server pinned to CPU 0
    assert auto_gen_procs([8, 9, 10, 11, 12, 13, 14, 15]) == 8
    assert auto_gen_procs(None) >= 1  # unpinned


def test_ceiling_calls_a_server_saturated_when_its_cpu_is_spent():
    assert server_saturated({"cpu_python_pct": 95.0, "cpu_pct": 96.0}, 1, [0])
    assert not server_saturated({"cpu_python_pct": 60.0, "cpu_pct": 70.0}, 1, [0])
    # two worker processes each need their core; four pinned CPUs all busy also count
    assert not server_saturated({"cpu_python_pct": 120.0, "cpu_pct": 150.0}, 2, [0, 1, 2, 3])
    assert server_saturated({"cpu_python_pct": 185.0, "cpu_pct": 200.0}, 2, [0, 1, 2, 3])
    assert server_saturated({"cpu_python_pct": 150.0, "cpu_pct": 370.0}, 2, [0, 1, 2, 3])
