"""Reporting the ``cost`` scenario (benchmarks/cost.py): each step's ratios to the
one-process step, its markdown table, and its rows in ``benchmarks.run``'s summary.

With ``--cost-rounds R`` every (topology, placement, processes) has R steps: the
ratios and the summary rows use each figure's median over them, its range beside it
(``cost_medians``), as one noisy step would otherwise decide a ratio.

Every group is a server's too (``--cost-server``: chatroom or the relay, the floor):
a relay step's ratio is to the relay's one-process steps, chatroom's to chatroom's."""

from __future__ import annotations

import statistics

#: (key in ratio_to_one_process, the step's figure) for every ratio reported.
RATIOS = {
    "server": lambda r: r["server_us_per_delivery"],
    "server_marginal": lambda r: r["server_marginal_us_per_delivery"],
    "redis": lambda r: r["redis_us_per_message"]["masters"],
    "redis_marginal": lambda r: r["redis_marginal_us_per_message"]["masters"],
}


def server_of(r: dict) -> str:
    """The server a step measured (chatroom for steps recorded before ``--cost-server``)."""
    return r["params"].get("server") or r.get("server") or "chatroom"


def _key(r: dict) -> tuple[str, str, str, int]:
    p = r["params"]
    return server_of(r), p["topology"], p["placement"], p["processes"]


def value_range(values: list[float]) -> dict:
    """The median of a figure over the rounds, and its range."""
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def cost_medians(results: list[dict]) -> list[dict]:
    """Per (server, topology, placement, processes), in the order first run: how many rounds, each
    figure's median and range over them (``RATIOS``' keys), the deliveries/s median, the
    bad frames summed, and the medians' ratio to those of the one-process steps."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("scenario") == "cost":
            groups.setdefault(_key(r), []).append(r)
    # A step whose placement did not hold measured another placement: left out of the
    # medians, unless no step of its group held.
    held = {k: [r for r in v if r.get("placement_held", True)] or v for k, v in groups.items()}
    out = [
        {
            "server": server,
            "topology": topology,
            "placement": placement,
            "processes": processes,
            "rounds": len(steps),
            "not_held": len(groups[(server, topology, placement, processes)]) - len(steps),
            "figures": {k: value_range([f(r) for r in steps]) for k, f in RATIOS.items()},
            "deliveries_per_s": statistics.median(r["deliveries_per_s"] for r in steps),
            "bad": sum(r["bad"] for r in groups[(server, topology, placement, processes)]),
        }
        for (server, topology, placement, processes), steps in held.items()
    ]
    for g in out:
        base = _one_process(out, g["server"], g["topology"], g["placement"])
        if base is not None:
            g["ratio_to_one_process"] = {
                k: _ratio(g["figures"][k]["median"], base["figures"][k]["median"]) for k in RATIOS
            }
    return out


def _one_process(medians: list[dict], server: str, topology: str, placement: str) -> dict | None:
    return _group(medians, server, topology, placement, 1)


def _group(medians: list[dict], *key) -> dict | None:
    """The medians of (server, topology, placement, processes), if run."""
    return next(
        (g for g in medians
         if (g["server"], g["topology"], g["placement"], g["processes"]) == key),
        None,
    )  # fmt: skip


def add_ratios(results: list[dict]) -> None:
    """Each step's figures over the one-process median of its server, topology and placement
    (that one step's figures with one round), where there is a one-process step."""
    medians = cost_medians(results)
    for r in results:
        p = r["params"]
        base = _one_process(medians, server_of(r), p["topology"], p["placement"])
        if base is not None:
            r["ratio_to_one_process"] = {
                k: _ratio(f(r), base["figures"][k]["median"]) for k, f in RATIOS.items()
            }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def _pct(per_s: float) -> str:
    return f"{per_s * 100:.1f}"


def _redis_cpus(results: list[dict]) -> str:
    """Where the Redis nodes ran, as the steps recorded it (``--cost-redis-cpus``)."""
    seen = []
    for r in results:
        p = r["params"]
        cpus = ",".join(map(str, p.get("redis_cpu_set") or ()))
        where = f"CPU {cpus} (`--cost-redis-cpus {p.get('redis_cpus')}`)" if cpus else ""
        if where and where not in seen:
            seen.append(where)
    return "; ".join(seen) or "unrecorded"


def cost_table(results: list[dict]) -> str:
    """The markdown table of the ``cost`` steps, and with more than one round a table of
    the medians over the rounds."""
    medians = cost_medians(results)
    rounds = max((g["rounds"] for g in medians), default=1)
    lines = [
        "CPU per delivery and per message; the server runs pinned to its CPUs (one core on "
        "a 2-core machine), so these are cost figures, not throughput. Marginal: less the "
        "CPU the same joined sockets cost silent (idle) for as long. Redis nodes on "
        f"{_redis_cpus(results)}."
        + (
            f" {rounds} rounds, interleaved (processes #round); × 1 process: the step's "
            "figure over the median of the one-process steps."
            if rounds > 1
            else ""
        ),
        "",
        "| server | topology | placement | processes | members per worker | deliveries/s | "
        "lost / dup / disorder | server µs/delivery (marginal) | × 1 process | "
        "server idle % CPU | Redis masters µs/message (marginal) | × 1 process | "
        "masters idle % CPU | replicas µs/msg | Sentinels µs/msg | other load % |",
        "| --- | --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: | ---: | ---: |",
    ]
    for r in results:
        p, redis_us = r["params"], r["redis_us_per_message"]
        marginal, idle = r["redis_marginal_us_per_message"], r["idle"]
        ratio = _ratio_cells(r.get("ratio_to_one_process"))
        args = " ".join(p["chatroom_args"])
        processes = f"{p['processes']} #{p.get('round', 1)}" if rounds > 1 else p["processes"]
        lines.append(
            f"| {server_of(r)} | {p['topology']}{' ' + args if args else ''} | {p['placement']} | "
            f"{processes} | {'/'.join(map(str, r['members_per_worker']))} | "
            f"{r['deliveries_per_s']:,.0f} | "
            f"{r['lost']} / {r['duplicates']} / {r['out_of_order']} | "
            f"{r['server_us_per_delivery']} ({r['server_marginal_us_per_delivery']}) | "
            f"{ratio['server']} ({ratio['server_marginal']}) | "
            f"{_pct(idle['server_per_s'])} | "
            f"{redis_us['masters']} ({marginal['masters']}) | "
            f"{ratio['redis']} ({ratio['redis_marginal']}) | "
            f"{_pct(idle['redis_per_s']['masters'])} | "
            f"{redis_us['replicas']} | {redis_us['sentinels']} | "
            f"{(r['server_usage'] or {}).get('other_load_pct', '–')} |"
        )
    if rounds > 1:
        lines += ["", *medians_table(medians, rounds)]
    return "\n".join(lines) + "\n"


def _ratio_cells(known: dict | None) -> dict:
    return {k: "–" if (known or {}).get(k) is None else known[k] for k in RATIOS}


def _with_range(v: dict, fmt=str) -> str:
    """The median, then ``[min-max]`` unless every round gave the same."""
    if v["min"] == v["max"]:
        return fmt(v["median"])
    return f"{fmt(v['median'])} [{fmt(v['min'])}–{fmt(v['max'])}]"


def _not_held(group: dict) -> str:
    missing = group.get("not_held", 0)
    return f" (+{missing} left out: placement not held)" if missing else ""


def medians_table(medians: list[dict], rounds: int) -> list[str]:
    """The markdown lines of the medians over the rounds (``cost_medians``)."""
    lines = [
        f"Medians over {rounds} rounds, [min–max] beside each; × 1 process: median over "
        "the median of the one-process steps.",
        "",
        "| server | topology | placement | processes | rounds | deliveries/s | bad | "
        "server µs/delivery | marginal | × 1 process (marginal) | "
        "Redis masters µs/message | marginal | × 1 process (marginal) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for g in medians:
        f, ratio = g["figures"], _ratio_cells(g.get("ratio_to_one_process"))
        lines.append(
            f"| {g['server']} | {g['topology']} | {g['placement']} | {g['processes']} | "
            f"{g['rounds']}{_not_held(g)} | "
            f"{g['deliveries_per_s']:,.0f} | {g['bad']} | "
            f"{_with_range(f['server'])} | {_with_range(f['server_marginal'])} | "
            f"{ratio['server']} ({ratio['server_marginal']}) | "
            f"{_with_range(f['redis'])} | {_with_range(f['redis_marginal'])} | "
            f"{ratio['redis']} ({ratio['redis_marginal']}) |"
        )
    return lines


def cost_rows(results: list[dict], fmt) -> list[dict]:
    """Summary rows for ``benchmarks.run``: per server, topology, placement and process
    count, the medians over the rounds (the step's own figures with one round) against
    the one-process medians, each figure's range beside it. Where the relay ran beside
    chatroom, its figures and ratio go in chatroom's row (the baseline column), not a
    row of their own."""
    medians = cost_medians(results)
    rows = []
    for g in medians:
        where = (g["topology"], g["placement"], g["processes"])
        if g["server"] == "relay" and _group(medians, "chatroom", *where) is not None:
            continue
        relay = _group(medians, "relay", *where) if g["server"] == "chatroom" else None
        ratio = g.get("ratio_to_one_process") or {}
        rounds = f", medians over {g['rounds']} rounds" if g["rounds"] > 1 else ""
        name = "" if g["server"] == "chatroom" else f" {g['server']}"
        rows.append(
            {
                "target": f"cost{name} ({g['topology']}, {g['placement']}): ×{g['processes']} "
                "processes: server µs/delivery; Redis masters µs/message (marginal)",
                "baseline": relay
                and f"relay (floor): {_figures(relay, fmt)}; ×{g['processes']} "
                f"/ ×1 {(relay.get('ratio_to_one_process') or {}).get('server')}",
                "chatroom": _figures(g, fmt),
                "ratio": ratio.get("server"),
                "ratio_of": f"server ×{g['processes']} / ×1{rounds}; marginal "
                f"{ratio.get('server_marginal')}; Redis {ratio.get('redis')} "
                f"(marginal {ratio.get('redis_marginal')})",
                "met": None,
                "note": "a cost figure, not throughput",
            }
        )
    return rows


def _figures(g: dict, fmt) -> str:
    """A group's medians (``cost_medians``) as the summary shows them."""
    f = g["figures"]
    return (
        f"{_with_range(f['server'], fmt)} ({_with_range(f['server_marginal'], fmt)}) µs; "
        f"{_with_range(f['redis'], fmt)} ({_with_range(f['redis_marginal'], fmt)}) µs; "
        f"{fmt(g['deliveries_per_s'])} deliveries/s, {g['bad']} bad"
    )
