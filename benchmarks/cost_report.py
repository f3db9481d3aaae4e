"""Reporting the ``cost`` scenario (benchmarks/cost.py): each step's ratios to the
one-process step, its markdown table, and its rows in ``benchmarks.run``'s summary."""

from __future__ import annotations

#: (key in ratio_to_one_process, the step's figure) for every ratio reported.
RATIOS = {
    "server": lambda r: r["server_us_per_delivery"],
    "server_marginal": lambda r: r["server_marginal_us_per_delivery"],
    "redis": lambda r: r["redis_us_per_message"]["masters"],
    "redis_marginal": lambda r: r["redis_marginal_us_per_message"]["masters"],
}


def add_ratios(results: list[dict]) -> None:
    """Each step's figures over those of its placement's one-process step, where there is one."""
    for r in results:
        p = r["params"]
        base = next(
            (b for b in results
             if b["params"]["placement"] == p["placement"]
             and b["params"]["topology"] == p["topology"]
             and b["params"]["processes"] == 1),
            None,
        )  # fmt: skip
        if base is not None:
            r["ratio_to_one_process"] = {k: _ratio(f(r), f(base)) for k, f in RATIOS.items()}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def _pct(per_s: float) -> str:
    return f"{per_s * 100:.1f}"


def cost_table(results: list[dict]) -> str:
    """The markdown table of the ``cost`` steps."""
    lines = [
        "CPU per delivery and per message; the server runs pinned to its CPUs (one core on "
        "a 2-core machine), so these are cost figures, not throughput. Marginal: less the "
        "CPU the same joined sockets cost silent (idle) for as long.",
        "",
        "| topology | placement | processes | members per worker | deliveries/s | "
        "lost / dup / disorder | server µs/delivery (marginal) | × 1 process | "
        "server idle % CPU | Redis masters µs/message (marginal) | × 1 process | "
        "masters idle % CPU | replicas µs/msg | Sentinels µs/msg | other load % |",
        "| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: |",
    ]
    for r in results:
        p, redis_us = r["params"], r["redis_us_per_message"]
        marginal, idle = r["redis_marginal_us_per_message"], r["idle"]
        known = r.get("ratio_to_one_process") or {}
        ratio = {k: "–" if known.get(k) is None else known[k] for k in RATIOS}
        args = " ".join(p["chatroom_args"])
        lines.append(
            f"| {p['topology']}{' ' + args if args else ''} | {p['placement']} | "
            f"{p['processes']} | {'/'.join(map(str, r['members_per_worker']))} | "
            f"{r['deliveries_per_s']:,.0f} | "
            f"{r['lost']} / {r['duplicates']} / {r['out_of_order']} | "
            f"{r['server_us_per_delivery']} ({r['server_marginal_us_per_delivery']}) | "
            f"{ratio.get('server')} ({ratio.get('server_marginal')}) | "
            f"{_pct(idle['server_per_s'])} | "
            f"{redis_us['masters']} ({marginal['masters']}) | "
            f"{ratio.get('redis')} ({ratio.get('redis_marginal')}) | "
            f"{_pct(idle['redis_per_s']['masters'])} | "
            f"{redis_us['replicas']} | {redis_us['sentinels']} | "
            f"{(r['server_usage'] or {}).get('other_load_pct', '–')} |"
        )
    return "\n".join(lines) + "\n"


def cost_rows(results: list[dict], fmt) -> list[dict]:
    """Summary rows for ``benchmarks.run``: each step against its one-process step."""
    rows = []
    for r in results:
        if r.get("scenario") != "cost":
            continue
        p, ratio = r["params"], r.get("ratio_to_one_process") or {}
        rows.append(
            {
                "target": f"cost ({p['topology']}, {p['placement']}): ×{p['processes']} "
                "processes: server µs/delivery; Redis masters µs/message (marginal)",
                "baseline": None,
                "chatroom": f"{fmt(r['server_us_per_delivery'])} "
                f"({fmt(r['server_marginal_us_per_delivery'])}) µs; "
                f"{fmt(r['redis_us_per_message']['masters'])} "
                f"({fmt(r['redis_marginal_us_per_message']['masters'])}) µs; "
                f"{fmt(r['deliveries_per_s'])} deliveries/s, {r['bad']} bad",
                "ratio": ratio.get("server"),
                "ratio_of": f"server ×{p['processes']} / ×1; marginal "
                f"{ratio.get('server_marginal')}; Redis {ratio.get('redis')} "
                f"(marginal {ratio.get('redis_marginal')})",
                "met": None,
                "note": "a cost figure, not throughput",
            }
        )
    return rows
