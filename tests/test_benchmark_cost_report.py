"""The ``cost`` scenario's reporting and options (benchmarks/cost_report.py,
benchmarks/cost.py, benchmarks/cost_redis.py) on made-up steps: medians and ranges
over ``--cost-rounds``, the ratios to one process taken from them, the options'
parsing, and where ``--cost-redis-cpus`` puts the Redis nodes."""

from __future__ import annotations

import argparse
import os

import pytest
from benchmarks.cost import (
    add_cost_options,
    cost_settings,
    parse_processes,
    parse_rounds,
    placement_held,
)
from benchmarks.cost_redis import RedisUnderTest, redis_cpu_set
from benchmarks.cost_report import add_ratios, cost_medians, cost_rows, cost_table
from benchmarks.run import _fmt

from tests.redis_topologies import require_redis_server


def step(processes: int, server: float, redis: float, round_: int = 1, placement="spread"):
    """A ``cost_step`` result with the figures the report reads."""
    return {
        "scenario": "cost",
        "server": "chatroom",
        "params": {
            "topology": "single",
            "placement": placement,
            "processes": processes,
            "chatroom_args": [],
            "round": round_,
            "redis_cpus": "generator",
            "redis_cpu_set": [1],
        },
        "members_per_worker": [6],
        "deliveries_per_s": 960.0,
        "lost": 0,
        "duplicates": 0,
        "out_of_order": 0,
        "bad": 0,
        "server_us_per_delivery": server,
        "server_marginal_us_per_delivery": server - 10.0,
        "redis_us_per_message": {"masters": redis, "replicas": 0.0, "sentinels": 0.0},
        "redis_marginal_us_per_message": {
            "masters": redis - 20.0,
            "replicas": 0.0,
            "sentinels": 0.0,
        },
        "idle": {"server_per_s": 0.01, "redis_per_s": {"masters": 0.02}},
        "server_usage": {"other_load_pct": 1.0},
    }


def three_rounds() -> list[dict]:
    """The noisy steps of the brief: 71/80/70 µs at one process, 121/88/105 at four."""
    steps = []
    for round_, (one, four) in enumerate([(71.0, 121.0), (80.0, 88.0), (70.0, 105.0)], 1):
        steps += [step(1, one, 200.0 + round_, round_), step(4, four, 210.0 + round_, round_)]
    return steps


def test_medians_and_ranges_over_the_rounds_give_the_ratio():
    one, four = cost_medians(three_rounds())
    assert (one["processes"], one["rounds"], four["processes"], four["rounds"]) == (1, 3, 4, 3)
    assert four["figures"]["server"] == {"median": 105.0, "min": 88.0, "max": 121.0}
    assert four["figures"]["server_marginal"] == {"median": 95.0, "min": 78.0, "max": 111.0}
    assert four["figures"]["redis"] == {"median": 212.0, "min": 211.0, "max": 213.0}
    assert four["figures"]["redis_marginal"]["median"] == 192.0
    assert four["ratio_to_one_process"]["server"] == round(105 / 71, 2)  # median / median
    assert four["ratio_to_one_process"]["redis"] == round(212 / 202, 2)
    assert one["ratio_to_one_process"]["server"] == 1.0


def test_an_even_number_of_rounds_takes_the_mean_of_the_middle_two():
    steps = [step(1, 70.0, 200.0, 1), step(1, 80.0, 220.0, 2)]
    (only,) = cost_medians(steps)
    assert only["figures"]["server"] == {"median": 75.0, "min": 70.0, "max": 80.0}


def test_placements_are_their_own_groups_each_against_its_own_one_process_steps():
    steps = [step(1, 50.0, 100.0, placement="one"), step(2, 60.0, 100.0, placement="one")]
    steps += [step(2, 90.0, 100.0)]  # spread, without a one-process step
    medians = cost_medians(steps)
    assert [(g["placement"], g["processes"]) for g in medians] == [
        ("one", 1),
        ("one", 2),
        ("spread", 2),
    ]
    assert medians[1]["ratio_to_one_process"]["server"] == 1.2
    assert "ratio_to_one_process" not in medians[2]


def test_a_step_ratio_is_over_the_median_of_the_one_process_steps():
    steps = three_rounds()
    add_ratios(steps)
    assert [s["ratio_to_one_process"]["server"] for s in steps] == [
        1.0,
        round(121 / 71, 2),
        round(80 / 71, 2),
        round(88 / 71, 2),
        round(70 / 71, 2),
        round(105 / 71, 2),
    ]


def test_one_round_ratios_are_step_over_step():
    steps = [step(1, 80.0, 200.0), step(4, 100.0, 230.0)]
    add_ratios(steps)
    assert steps[1]["ratio_to_one_process"] == {
        "server": 1.25,
        "server_marginal": round(90 / 70, 2),
        "redis": 1.15,
        "redis_marginal": round(210 / 180, 2),
    }


def test_summary_rows_show_the_median_and_its_range_one_row_per_count():
    steps = three_rounds()
    add_ratios(steps)
    rows = cost_rows(steps, _fmt)
    assert len(rows) == 2
    assert rows[1]["chatroom"].startswith("105.0 [88.0–121.0] (95.0 [78.0–111.0]) µs; 212.0")
    assert rows[1]["ratio"] == round(105 / 71, 2)
    assert "medians over 3 rounds" in rows[1]["ratio_of"]


def test_one_round_keeps_the_summary_and_the_table_as_they_were():
    steps = [step(1, 80.0, 200.0), step(4, 100.0, 230.0)]
    add_ratios(steps)
    rows = cost_rows(steps, _fmt)
    assert rows[1]["chatroom"] == "100.0 (90.0) µs; 230.0 (210.0) µs; 960.0 deliveries/s, 0 bad"
    assert rows[1]["ratio_of"] == "server ×4 / ×1; marginal 1.29; Redis 1.15 (marginal 1.17)"
    table = cost_table(steps)
    assert "Medians over" not in table and "#1" not in table
    assert "| single | spread | 4 | 6 | 960 |" in table


def test_the_table_adds_the_medians_and_names_the_round_and_the_redis_cpus():
    steps = three_rounds()
    add_ratios(steps)
    table = cost_table(steps)
    assert "Redis nodes on CPU 1 (`--cost-redis-cpus generator`)" in table
    assert "| single | spread | 4 #2 |" in table
    assert "Medians over 3 rounds" in table
    assert "| single | spread | 4 | 3 | 960 | 0 | 105.0 [88.0–121.0] | 95.0 [78.0–111.0] |" in table


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cost_options(parser)
    return parser.parse_args(argv)


def test_rounds_and_redis_cpus_options():
    default = cost_settings(parse())
    assert (default.rounds, default.redis_cpus, default.processes) == (1, "generator", (1, 2, 4, 8))
    chosen = cost_settings(
        parse("--cost-rounds", "3", "--cost-redis-cpus", "server", "--cost-processes", "1,4")
    )
    assert (chosen.rounds, chosen.redis_cpus, chosen.processes) == (3, "server", (1, 4))
    for bad in (["--cost-rounds", "0"], ["--cost-rounds", "x"], ["--cost-redis-cpus", "any"]):
        with pytest.raises(SystemExit):
            parse(*bad)


def test_parse_rounds_and_processes_refuse_what_is_not_a_count():
    assert parse_rounds("5") == 5
    assert parse_processes("1, 2,4") == (1, 2, 4)
    for bad in ("0", "-1", "", "two"):
        with pytest.raises(ValueError):
            parse_rounds(bad)
    with pytest.raises(ValueError):
        parse_processes("0,1")


def test_redis_cpu_set_follows_the_benchmarks_cpu_plan():
    assert redis_cpu_set("generator", [0], [1]) == [1]
    assert redis_cpu_set("server", [0, 1], [3, 2]) == [0, 1]
    assert redis_cpu_set("all", [0], [1]) is None
    assert redis_cpu_set("generator", None, None) is None  # --no-pin, or one CPU
    with pytest.raises(ValueError):
        redis_cpu_set("elsewhere", [0], [1])


def test_redis_nodes_start_pinned_to_the_cpus_asked(tmp_path):
    require_redis_server()
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("pinning needs two CPUs to show")
    redis = RedisUnderTest("single", tmp_path, cpus=[usable[-1]]).start()
    try:
        assert redis.affinity() == [usable[-1]]
        assert os.sched_getaffinity(0) == set(usable)  # this process's own, restored
    finally:
        redis.stop()


def test_a_step_whose_placement_did_not_hold_is_left_out_of_the_medians():
    """``place`` gives up after its reconnect rounds: a ``spread`` step that left a
    worker without members measured another placement, and its figure must not move
    the median (the run of 2026-12-06 had 64/64/64/0 at 4 processes)."""
    steps = three_rounds()
    steps[-1]["placement_held"] = False  # the third round at 4 processes: 105 µs
    steps[-1]["bad"] = 2  # its failures still count
    _one, four = cost_medians(steps)
    assert (four["rounds"], four["not_held"], four["bad"]) == (2, 1, 2)
    assert four["figures"]["server"] == {"median": 104.5, "min": 88.0, "max": 121.0}
    assert "(+1 left out: placement not held)" in cost_table(steps)
    for step_ in steps:  # no step held: all are kept rather than none
        step_["placement_held"] = False
    assert cost_medians(steps)[1]["rounds"] == 3


@pytest.mark.parametrize(
    ("placement", "members", "held"),
    [
        ("spread", [48, 48, 48, 48], True),
        ("spread", [64, 64, 64, 0], False),
        ("one", [192, 0, 0, 0], True),
        ("one", [192], True),
        ("one", [190, 2], False),
    ],
)
def test_placement_held(placement, members, held):
    assert placement_held(placement, members) is held


def test_a_worker_the_placement_never_saw_is_not_held():
    """Three workers listed with members out of four started: the fourth held none."""
    assert placement_held("spread", [64, 64, 64], 4) is False
    assert placement_held("spread", [48, 48, 48, 48], 4) is True
