"""The arithmetic and the tables of ``benchmarks.features``: per tree the median and
spread of the server's CPU µs per delivery over the rounds, and per feature the
after/before ratio of deliveries per CPU-second, judged against its threshold.

Deliveries per CPU-second is 1e6 / (µs per delivery): the rate a server bound by one
core sustains follows it, so a feature "keeps ≥ 95 % of the sustained deliveries/s"
when after/before ≥ 0.95 here. Every figure is computed from the trial dicts that
``benchmarks.features`` stores, so the same functions re-read a results file.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """A comparison: the tree labelled ``after`` against the one labelled ``before``;
    met when after/before (deliveries per CPU-second) ≥ ``threshold`` (None: reported,
    not judged)."""

    name: str
    before: str
    after: str
    threshold: float | None = 0.95


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def per_cpu_second(us_per_delivery: float | None) -> float | None:
    """Deliveries per CPU-second from CPU µs per delivery."""
    if not us_per_delivery:
        return None
    return 1e6 / us_per_delivery


def capacity_ratio(before_us: float | None, after_us: float | None) -> float | None:
    """after/before in deliveries per CPU-second, i.e. before µs / after µs."""
    if not before_us or not after_us:
        return None
    return before_us / after_us


def _trials(trials: Sequence[dict], label: str) -> list[dict]:
    return [t for t in trials if t.get("tree") == label and t.get("scenario") == "features"]


def tree_summary(trials: Sequence[dict], label: str) -> dict:
    """One tree's rounds: median, min, max and spread (max - min, % of the median) of
    the CPU µs per delivery, its deliveries per CPU-second, and the caveats."""
    mine = _trials(trials, label)
    us = [t["us_per_delivery"] for t in mine if t.get("us_per_delivery")]
    mid = median(us)
    return {
        "tree": label,
        "commit": mine[0].get("commit") if mine else None,
        "rounds": len(mine),
        "us_median": mid,
        "us_min": min(us) if us else None,
        "us_max": max(us) if us else None,
        "spread_pct": (max(us) - min(us)) / mid * 100.0 if mid else None,
        "per_cpu_s": per_cpu_second(mid),
        "python_us_median": median(t.get("python_us_per_delivery") for t in mine),
        "redis_us_median": median(t.get("redis_us_per_delivery") for t in mine),
        "cpu_pct_median": median((t.get("server_usage") or {}).get("cpu_pct") for t in mine),
        "p99_ms_median": median((t.get("latency") or {}).get("p99_ms") for t in mine),
        "bad": sum(t.get("bad", 0) for t in mine),
        "disturbed": sum(1 for t in mine if t.get("disturbed")),
        "saturated": sum(1 for t in mine if t.get("saturated")),
    }


def paired_ratios(trials: Sequence[dict], feature: Feature) -> list[float]:
    """after/before within each round (trials minutes apart), for the spread of the ratio."""
    before = {t["round"]: t.get("us_per_delivery") for t in _trials(trials, feature.before)}
    after = {t["round"]: t.get("us_per_delivery") for t in _trials(trials, feature.after)}
    out = []
    for rnd in sorted(set(before) & set(after)):
        ratio = capacity_ratio(before[rnd], after[rnd])
        if ratio is not None:
            out.append(ratio)
    return out


def ramp_top(trials: Sequence[dict], label: str) -> float | None:
    """The highest sustained deliveries/s of the tree's ramp (``--ramp``), if run."""
    for t in trials:
        if t.get("tree") == label and t.get("scenario") == "features-ramp":
            return t.get("max_deliveries_per_s")
    return None


def feature_rows(trials: Sequence[dict], features: Sequence[Feature]) -> list[dict]:
    """Per feature: the ratio of the medians, the per-round ratios' range, the ramp's
    ratio when there is one, and whether the threshold is met (None: not judged, or
    not valid because a trial lost, doubled or reordered a message)."""
    rows = []
    for f in features:
        before, after = tree_summary(trials, f.before), tree_summary(trials, f.after)
        ratio = capacity_ratio(before["us_median"], after["us_median"])
        pairs = paired_ratios(trials, f)
        top_before, top_after = ramp_top(trials, f.before), ramp_top(trials, f.after)
        clean = not (before["bad"] or after["bad"])
        met = None
        if f.threshold is not None and ratio is not None and clean:
            met = ratio >= f.threshold
        rows.append(
            {
                "feature": f.name,
                "before": f.before,
                "after": f.after,
                "threshold": f.threshold,
                "ratio": ratio,
                "paired_min": min(pairs) if pairs else None,
                "paired_max": max(pairs) if pairs else None,
                "ramp_ratio": top_after / top_before if top_before and top_after else None,
                "clean": clean,
                "met": met,
            }
        )
    return rows


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def tree_table(trials: Sequence[dict], labels: Sequence[str]) -> str:
    """Markdown: one row per tree."""
    lines = [
        "| tree | commit | rounds | CPU µs/delivery median (min–max, spread) | deliveries "
        "per CPU-s | Python / Redis µs | server CPU % | p99 ms | ramp top /s | caveats |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for label in labels:
        s = tree_summary(trials, label)
        caveats = [
            f"{s['bad']} bad" if s["bad"] else "",
            f"{s['disturbed']} disturbed" if s["disturbed"] else "",
            f"{s['saturated']} saturated" if s["saturated"] else "",
        ]
        lines.append(
            f"| {label} | `{s['commit'] or '?'}` | {s['rounds']} | {_num(s['us_median'], 2)} "
            f"({_num(s['us_min'], 2)}–{_num(s['us_max'], 2)}, {_num(s['spread_pct'])} %) | "
            f"{_num(s['per_cpu_s'], 0)} | {_num(s['python_us_median'], 2)} / "
            f"{_num(s['redis_us_median'], 2)} | {_num(s['cpu_pct_median'])} | "
            f"{_num(s['p99_ms_median'])} | {_num(ramp_top(trials, label), 0)} | "
            f"{', '.join(c for c in caveats if c) or '–'} |"
        )
    return "\n".join(lines) + "\n"


def feature_table(rows: Sequence[dict]) -> str:
    """Markdown: one row per feature."""
    lines = [
        "| feature | before → after | after/before, deliveries per CPU-s (per round) | "
        "ramp after/before | threshold | met |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for r in rows:
        if not r["clean"]:
            met = "**invalid** (a trial lost, doubled or reordered messages)"
        elif r["met"] is None:
            met = "–"
        else:
            met = "met" if r["met"] else "**not met**"
        lines.append(
            f"| {r['feature']} | {r['before']} → {r['after']} | {_num(r['ratio'], 3)} "
            f"({_num(r['paired_min'], 3)}–{_num(r['paired_max'], 3)}) | "
            f"{_num(r['ramp_ratio'], 2)} | {_num(r['threshold'], 2)} | {met} |"
        )
    return "\n".join(lines) + "\n"
