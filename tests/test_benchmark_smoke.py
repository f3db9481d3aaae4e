"""CI's 10-second run of the steady benchmark: fails on loss, duplicates or disorder, never
on timing (benchmarks/smoke.py; the full benchmark is in docs/performance.md)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from benchmarks.generator import RoomSeen
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
