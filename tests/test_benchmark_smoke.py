"""CI's 10-second run of the steady benchmark: fails on loss, duplicates or disorder, never
on timing (benchmarks/smoke.py; the full benchmark is in docs/performance.md)."""

from __future__ import annotations

import pytest
from benchmarks.smoke import run_smoke


@pytest.mark.timeout(120)
def test_steady_smoke_loses_doubles_and_reorders_nothing():
    result = run_smoke(seconds=10)
    assert result["delivered"] > 0 and result["sent"] > 0, result
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0), result
    assert result["ok"], result
