"""``benchmarks.features`` (issue 17 target 4): the tree and feature lists it parses and
the arithmetic of its verdicts (medians, after/before in deliveries per CPU-second,
thresholds); no server runs here."""

from __future__ import annotations

import pytest
from benchmarks.feature_trees import DEFAULT_TREES, option_value, parse_feature, parse_tree, plan
from benchmarks.features_report import (
    Feature,
    capacity_ratio,
    feature_rows,
    feature_table,
    median,
    per_cpu_second,
    tree_summary,
    tree_table,
)


def test_a_tree_is_a_label_a_revision_and_serve_arguments():
    tree = parse_tree("main-off=main:--archiver off")
    assert (tree.label, tree.rev, tree.args) == ("main-off", "main", ("--archiver", "off"))
    assert parse_tree("0.1.0=3b5c509").args == ()
    assert parse_tree("x=/tmp/before/src").rev == "/tmp/before/src"


@pytest.mark.parametrize("text", ["", "main", "=main", "a=", "a b=main", "-x=main", "a/b=main"])
def test_a_tree_without_a_usable_label_or_revision_is_refused(text):
    with pytest.raises(ValueError, match="LABEL=REV"):
        parse_tree(text)


def test_a_feature_names_two_trees_and_maybe_a_threshold():
    assert parse_feature("files (issue 15)=a,b,0.9") == Feature("files (issue 15)", "a", "b", 0.9)
    assert parse_feature("x=a,b").threshold == 0.95
    assert parse_feature("x=a,b,").threshold is None  # reported, not judged


@pytest.mark.parametrize("text", ["a,b", "x=a", "x=a,b,0.9,1", "x=,b", "=a,b"])
def test_a_malformed_feature_is_refused(text):
    with pytest.raises(ValueError, match="NAME=BEFORE,AFTER"):
        parse_feature(text)


def test_the_default_plan_compares_trees_that_it_measures():
    trees, features = plan([], [])
    labels = {t.label for t in trees}
    assert len(trees) == len(DEFAULT_TREES) == len(labels)
    assert all({f.before, f.after} <= labels for f in features)
    archiver = [f for f in features if f.after == "main" and f.before == "main-archiver-off"]
    assert archiver and archiver[0].threshold == 0.90


def test_given_trees_without_features_compare_each_with_the_one_before():
    _, features = plan(["a=HEAD~2", "b=HEAD~1", "c=HEAD"], [])
    assert [(f.before, f.after, f.threshold) for f in features] == [
        ("a", "b", 0.95),
        ("b", "c", 0.95),
    ]
    with pytest.raises(ValueError, match="not in the list"):
        plan(["a=HEAD"], ["x=a,zz"])
    with pytest.raises(ValueError, match="must differ"):
        plan(["a=HEAD", "a=HEAD~1"], [])


def test_option_value_takes_the_last_value_in_either_form():
    assert option_value(["--archiver", "off"], "--archiver") == "off"
    assert option_value(["--archiver=on", "--x", "--archiver", "off"], "--archiver") == "off"
    assert option_value(["--archiver-x", "1"], "--archiver") is None


def test_median_ratio_and_capacity():
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None]) is None
    assert per_cpu_second(40.0) == 25_000.0
    # 40 µs a delivery before, 42 after: 40/42 = 0.952 of the deliveries per CPU-second.
    assert capacity_ratio(40.0, 42.0) == pytest.approx(0.95238, abs=1e-5)
    assert capacity_ratio(None, 42.0) is None


def trial(tree: str, rnd: int, us: float, bad: int = 0) -> dict:
    return {"scenario": "features", "tree": tree, "round": rnd, "commit": f"c-{tree}",
            "us_per_delivery": us, "bad": bad, "server_usage": {"cpu_pct": 50.0},
            "latency": {"p99_ms": 2.0}}  # fmt: skip


def test_rounds_give_a_median_a_spread_and_a_verdict_per_feature():
    trials = [
        *(trial("before", r, us) for r, us in enumerate((40.0, 44.0, 41.0))),
        *(trial("after", r, us) for r, us in enumerate((42.0, 43.0, 46.0))),
        *(trial("slow", r, us) for r, us in enumerate((50.0, 50.0, 50.0))),
        trial("broken", 0, 30.0, bad=2),
        {"scenario": "features-ramp", "tree": "before", "max_deliveries_per_s": 20_000.0},
        {"scenario": "features-ramp", "tree": "after", "max_deliveries_per_s": 19_000.0},
    ]
    before = tree_summary(trials, "before")
    assert (before["us_median"], before["us_min"], before["us_max"]) == (41.0, 40.0, 44.0)
    assert before["spread_pct"] == pytest.approx(4 / 41 * 100)
    rows = feature_rows(
        trials,
        [
            Feature("kept", "before", "after", 0.95),  # 41 -> 43: 0.953
            Feature("costly", "before", "slow", 0.95),  # 41 -> 50: 0.82
            Feature("lossy", "before", "broken", 0.95),
            Feature("told", "before", "slow", None),
        ],
    )
    kept, costly, lossy, told = rows
    assert kept["ratio"] == pytest.approx(41 / 43) and kept["met"] is True
    assert (kept["paired_min"], kept["paired_max"]) == pytest.approx((41 / 46, 44 / 43))
    assert kept["ramp_ratio"] == pytest.approx(0.95)
    assert costly["met"] is False and costly["ratio"] == pytest.approx(0.82)
    assert lossy["clean"] is False and lossy["met"] is None
    assert told["met"] is None and told["ratio"] == pytest.approx(0.82)
    table = feature_table(rows)
    assert "| kept | before → after | 0.953 (0.891–1.023) | 0.95 | 0.95 | met |" in table
    assert "**not met**" in table and "**invalid**" in table
    assert "| before | `c-before` | 3 | 41.00 (40.00–44.00, 9.8 %)" in tree_table(
        trials, ["before"]
    )
