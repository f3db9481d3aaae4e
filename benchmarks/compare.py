"""Summary rows for the ``ceiling`` scenario and for chatroom against the Socket.IO
baseline (``--server socketio|all``), in ``benchmarks.run``'s table format."""

from __future__ import annotations

from collections.abc import Callable

#: scenario -> (what is compared, its figure in a result, unit, lower is better)
FIGURES: dict[str, tuple[str, Callable[[dict], float | None], str, bool]] = {
    "steady": ("p99", lambda r: r["latency"]["p99_ms"], " ms", True),
    "ramp": ("highest sustained deliveries/s", lambda r: r["max_deliveries_per_s"], "/s", False),
    "ceiling": ("last sustained deliveries/s", lambda r: r["max_deliveries_per_s"], "/s", False),
    "idle": ("RSS per connection", lambda r: r["rss_per_conn_kib"], " KiB", True),
    "scale": ("idle CPU of a core", lambda r: r["idle_server_cpu_pct"], "%", True),
}


def best(results: list[dict], scenario: str, server: str) -> dict | None:
    """The best run of ``server`` in ``scenario`` (steady runs repeat; noise only hurts)."""
    _, figure, _, lower = FIGURES[scenario]
    runs = [r for r in results if r["scenario"] == scenario and r["server"] == server]
    runs = [r for r in runs if figure(r) is not None]
    if not runs:
        return None
    return min(runs, key=figure) if lower else max(runs, key=figure)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def ceiling_rows(results: list[dict], fmt: Callable) -> list[dict]:
    """The ceiling against the bare Tornado baseline (issue 7's ramp target, ≥ baseline)."""
    chat, base = best(results, "ceiling", "chatroom"), best(results, "ceiling", "baseline")
    if not chat:
        return []
    stops = "; ".join(f"{r['server']} stopped: {r['stop_reason']}" for r in (chat, base) if r)
    return [
        {
            "target": "ceiling: ≥ baseline's last sustained deliveries/s (steps of 1.25x until "
            "a step fails: p99 ≥ 250 ms or any loss/dup/disorder/error)",
            "baseline": base and f"{fmt(base['max_deliveries_per_s'])}/s",
            "chatroom": f"{fmt(chat['max_deliveries_per_s'])}/s",
            "ratio": ratio(chat["max_deliveries_per_s"], base and base["max_deliveries_per_s"]),
            "ratio_of": "chatroom / baseline",
            "met": bool(base) and chat["max_deliveries_per_s"] >= base["max_deliveries_per_s"],
            "note": stops,
        }
    ]


def socketio_rows(results: list[dict], fmt: Callable) -> list[dict]:
    """chatroom against python-socketio doing the baseline's work: informative, no target."""
    rows = []
    for scenario, (what, figure, unit, _) in FIGURES.items():
        sio, chat = best(results, scenario, "socketio"), best(results, scenario, "chatroom")
        if not sio:
            continue
        lost = f", lost {sio['lost']}" if "lost" in sio else ""
        rows.append(
            {
                "target": f"{scenario} against Socket.IO: {what}",
                "baseline": f"Socket.IO: {fmt(figure(sio), unit)}{lost}",
                "chatroom": fmt(figure(chat), unit) if chat else "–",
                "ratio": ratio(chat and figure(chat), figure(sio)),
                "ratio_of": "chatroom / Socket.IO",
                "met": None,
                "note": f"Socket.IO stopped: {sio['stop_reason']}" if "stop_reason" in sio else "",
            }
        )
    return rows
