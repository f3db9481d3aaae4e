"""``python -m benchmarks.run``: run scenarios against chatroom and the baseline, print a
summary table, append JSON lines to benchmarks/results/ and write a markdown table.

Examples::

    python -m benchmarks.run                       # every scenario (about 8 minutes)
    python -m benchmarks.run --scenario steady     # one scenario, chatroom and baseline
    python -m benchmarks.run --scenario ramp --server chatroom
    python -m benchmarks.run --scenario ceiling --server all   # + the Socket.IO baseline
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import servers
from benchmarks.archive_lag import fmt_lag, lag_rows
from benchmarks.ceiling import ceiling
from benchmarks.compare import ceiling_rows, socketio_rows
from benchmarks.cost import CostSettings, add_cost_options, cost_settings, run_cost
from benchmarks.cost_report import cost_rows, cost_table
from benchmarks.generator import faults, raise_nofile_limit
from benchmarks.scale import scale_rows
from benchmarks.scenarios import RAMP_P99_MS, Bench, Settings
from benchmarks.uploads import UPLOAD_P99_MS

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("steady", "ramp", "idle", "memory", "procs", "catchup", "uploads")
#: Scenarios run only when named (not part of "all"): ``scale`` holds 10,000 sockets;
#: ``ceiling`` ramps every server to this machine's limit (minutes per server);
#: ``cost`` starts Redis topologies and up to eight server processes.
EXTRA_SCENARIOS = ("scale", "ceiling", "cost")
#: ``--server`` -> the servers measured; "all" adds the Socket.IO baseline.
SERVER_SETS = {
    "both": ["baseline", "chatroom"],
    "all": ["baseline", "socketio", "chatroom"],
    "chatroom": ["chatroom"],
    "baseline": ["baseline"],
    "socketio": ["socketio"],
}


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tornado

    try:
        import psutil

        mem = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        mem = None
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": mem,
        "python": platform.python_version(),
        "tornado": tornado.version,
        "platform": platform.platform(),
        "nofile": raise_nofile_limit(),
        **chatroom_version(),
    }


def chatroom_version() -> dict:
    """Which chatroom was measured: the commit, and whether src/ differed from it."""
    src = servers.CHATROOM_SRC or str(servers.ROOT / "src")
    out = {"chatroom_src": src}
    if servers.CHATROOM_SRC:
        # Another tree (e.g. ``git archive COMMIT src | tar -x``): its COMMIT file, if any.
        marker = Path(src).parent / "COMMIT"
        out["commit"] = marker.read_text().strip() if marker.exists() else None
        return out
    try:
        git = ["git", "-C", str(servers.ROOT)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        out["commit"] = commit.stdout.strip() or None
        if not servers.CHATROOM_SRC:
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "src"], capture_output=True, text=True
            )
            out["src_modified"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return out


async def run_scenarios(
    names: list[str],
    servers: list[str],
    bench: Bench,
    results: list[dict],
    cost: CostSettings | None = None,
) -> list[dict]:
    """Run the scenarios, appending to ``results``; SIGINT/SIGTERM stop it cleanly (every
    server is stopped, the results so far are kept)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    log = bench.log
    for name in names:
        log(f"== {name} ==")
        started = time.monotonic()
        if name == "steady":
            # Alternated and repeated: the machine may be shared; the best run of each counts.
            for repeat in range(bench.s.steady_repeat):
                for kind in servers:
                    results.append(await bench.steady(kind, repeat=repeat))
            for kind in servers:  # one more try where every run was disturbed
                best = best_steady(results, kind)
                if best and best["disturbed"] and bench.s.steady_repeat > 1:
                    results.append(await bench.steady(kind, repeat=bench.s.steady_repeat))
        elif name == "ramp":
            for kind in servers:
                results.append(await bench.ramp(kind))
        elif name == "idle":
            for kind in servers:
                results.append(await bench.idle(kind))
        elif name == "memory":
            for kind in servers:
                results.append(await bench.memory(kind))
        elif name == "procs":
            # Both runs alike: pinned (server on one half of the CPUs, generator on the
            # other) where there are 4+ CPUs; else unpinned, as two workers need both CPUs.
            pin = len(bench.server_cpus or ()) >= 2
            for processes in (1, 2):
                results.append(await bench.ramp("chatroom", processes, pin=pin, label="procs"))
        elif name == "catchup":
            results.append(await bench.catchup("chatroom"))
        elif name == "uploads":
            results.extend(await bench.uploads())
        elif name == "scale":
            for kind in servers:
                results.append(await bench.scale(kind))
        elif name == "ceiling":
            for kind in servers:
                results.append(await ceiling(bench, kind))
        elif name == "cost":
            results.extend(await run_cost(bench, cost or CostSettings()))
        log(f"   ({name} took {time.monotonic() - started:.0f}s)")
    return results


def _find(results, scenario, server, **params):
    for r in results:
        same = r["scenario"] == scenario and r["server"] == server
        if same and all(r["params"].get(k) == v for k, v in params.items()):
            return r
    return None


def _ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return round(a / b, 2)


def _fmt(value, unit=""):
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def best_steady(results: list[dict], server: str) -> dict | None:
    """The repeat with the lowest p99 (noise only ever makes a run slower)."""
    runs = [r for r in results if r["scenario"] == "steady" and r["server"] == server]
    return min(runs, key=lambda r: r["latency"]["p99_ms"] or 1e9) if runs else None


def note(*runs: dict | None) -> str:
    """Caveats of the runs behind a figure: the generator's limit, or a disturbed run."""
    out = []
    for r in runs:
        if not r:
            continue
        step = r.get("best_step") or r
        if r.get("generator_saturated") or step.get("generator_saturated"):
            out.append(f"{r['server']}: generator saturated")
        elif step.get("disturbed"):
            out.append(f"{r['server']} run disturbed: {step['disturbed']}")
    return "; ".join(out)


def summarize(results: list[dict]) -> list[dict]:
    """One row per target of issue #7 that the results cover."""
    rows = []
    base, chat = best_steady(results, "baseline"), best_steady(results, "chatroom")
    if chat:
        bad = faults(chat)
        p99 = chat["latency"]["p99_ms"]
        rows.append(
            {
                "target": "steady: p99 < 50 ms, 0 loss",
                "baseline": base
                and f"p99 {_fmt(base['latency']['p99_ms'], ' ms')}, lost {base['lost']}",
                "chatroom": f"p99 {_fmt(p99, ' ms')}, lost {chat['lost']}",
                "ratio": _ratio(p99, base and base["latency"]["p99_ms"]),
                "ratio_of": "p99 chatroom / baseline",
                "met": p99 is not None and p99 < 50 and bad == 0,
                "note": note(chat, base),
            }
        )
    base, chat = _find(results, "ramp", "baseline"), _find(results, "ramp", "chatroom")
    if chat:
        rows.append(
            {
                "target": f"ramp: ≥ baseline deliveries/s (p99 < {RAMP_P99_MS:.0f} ms, 0 loss)",
                "baseline": base and f"{_fmt(base['max_deliveries_per_s'])}/s",
                "chatroom": f"{_fmt(chat['max_deliveries_per_s'])}/s",
                "ratio": _ratio(
                    chat["max_deliveries_per_s"], base and base["max_deliveries_per_s"]
                ),
                "ratio_of": "chatroom / baseline",
                "met": bool(base) and chat["max_deliveries_per_s"] >= base["max_deliveries_per_s"],
                "note": note(chat, base),
            }
        )
    base, chat = _find(results, "idle", "baseline"), _find(results, "idle", "chatroom")
    if chat:
        kib = chat["rss_per_conn_kib"]
        rows.append(
            {
                "target": "idle: ≤ 40 KiB RSS per connection "
                f"({chat['params']['clients']} clients)",
                "baseline": base and _fmt(base["rss_per_conn_kib"], " KiB"),
                "chatroom": _fmt(kib, " KiB"),
                "ratio": _ratio(kib, base and base["rss_per_conn_kib"]),
                "ratio_of": "chatroom / baseline",
                "met": kib is not None and kib <= 40,
                "note": "",
            }
        )
    rows += memory_rows(results)
    one, two = (_find(results, "procs", "chatroom", processes=p) for p in (1, 2))
    if one and two:
        rows.append(
            {
                "target": "2 processes ≥ 1.7× one process",
                "baseline": f"1 process: {_fmt(one['max_deliveries_per_s'])}/s",
                "chatroom": f"2 processes: {_fmt(two['max_deliveries_per_s'])}/s",
                "ratio": _ratio(two["max_deliveries_per_s"], one["max_deliveries_per_s"]),
                "ratio_of": "2 processes / 1",
                "met": (_ratio(two["max_deliveries_per_s"], one["max_deliveries_per_s"]) or 0)
                >= 1.7,
                "note": note(two, one),
            }
        )
    chat = _find(results, "catchup", "chatroom")
    if chat:
        t = chat["all_caught_up_s"]
        clean = not (chat["duplicates"] or chat["out_of_order"] or chat["failures"])
        clean = clean and chat["replayed"] == chat["missed"]
        rows.append(
            {
                "target": f"catch-up of {chat['params']['clients']} clients < 10 s",
                "baseline": None,
                "chatroom": f"{_fmt(t, ' s')}",
                "ratio": _ratio(t, 10.0),
                "ratio_of": "time / 10 s",
                "met": t is not None and t < 10 and clean,
                "note": "",
            }
        )
    rows += upload_rows(results) + scale_rows(results, _fmt) + ceiling_rows(results, _fmt)
    rows += socketio_rows(results, _fmt) + cost_rows(results, _fmt)
    return rows + lag_rows(results, _fmt)


def upload_rows(results: list[dict]) -> list[dict]:
    """Issue 15: message p99 while a 10 MiB upload streams, and upload throughput."""
    rows = []
    quiet = _find(results, "uploads", "chatroom", uploading=False)
    busy = _find(results, "uploads", "chatroom", uploading=True)
    if busy:
        bad = faults(busy)
        p99, during = busy["latency"]["p99_ms"], busy.get("uploads_during") or {}
        rows.append(
            {
                "target": f"uploads: message p99 < {UPLOAD_P99_MS:.0f} ms while 10 MiB uploads "
                "stream, 0 loss",
                "baseline": quiet and f"no upload: p99 {_fmt(quiet['latency']['p99_ms'], ' ms')}",
                "chatroom": f"uploading: p99 {_fmt(p99, ' ms')}, lost {busy['lost']} "
                f"({during.get('uploads')} uploads, {_fmt(during.get('mb_per_s'))} MB/s)",
                "ratio": _ratio(p99, quiet and quiet["latency"]["p99_ms"]),
                "ratio_of": "p99 uploading / no upload",
                "met": p99 is not None
                and p99 < UPLOAD_P99_MS
                and bad == 0
                and not during.get("errors"),
                "note": note(busy, quiet),
            }
        )
    speed = _find(results, "upload-throughput", "chatroom")
    if speed:
        rows.append(
            {
                "target": "upload throughput, 10 MiB files, directory storage",
                "baseline": None,
                "chatroom": ", ".join(
                    f"{r['mode']} ×{r['uploaders']}: {_fmt(r['mb_per_s'])} MB/s"
                    for r in speed["runs"]
                ),
                "ratio": None,
                "ratio_of": "",
                "met": None,
                "note": "",
            }
        )
    return rows


#: Issue #17's memory targets: RSS at rest after the sign-ups, and per idle socket.
MEMORY_REST_MIB = 80.0
MEMORY_PER_CONN_KIB = 16.0


def memory_rows(results: list[dict]) -> list[dict]:
    base, chat = _find(results, "memory", "baseline"), _find(results, "memory", "chatroom")
    if not chat:
        return []
    users, clients = chat["params"]["users"], chat["params"]["clients"]
    rest, kib = chat["rss_rest_mib"], chat["rss_per_conn_kib"]
    return [
        {
            "target": f"memory: ≤ {MEMORY_REST_MIB:.0f} MiB RSS after {users} sign-ups + "
            "logins, before any socket (server + embedded Redis)",
            "baseline": base and _fmt(base["rss_rest_mib"], " MiB"),
            "chatroom": f"{_fmt(rest, ' MiB')} (python {_fmt(chat['rss_rest_python_mib'])})",
            "ratio": _ratio(rest, base and base["rss_rest_mib"]),
            "ratio_of": "chatroom / baseline",
            "met": rest is not None and rest <= MEMORY_REST_MIB,
            "note": f"sign-up + login p99 {_fmt(chat['request_p99_ms'], ' ms')}; PSS "
            f"{_fmt(chat.get('pss_rest_mib'), ' MiB')} over {chat.get('processes_at_rest')} "
            "processes",
        },
        {
            "target": f"memory: ≤ {MEMORY_PER_CONN_KIB:.0f} KiB RSS per idle connection "
            f"({clients} sockets)",
            "baseline": base and _fmt(base["rss_per_conn_kib"], " KiB"),
            "chatroom": _fmt(kib, " KiB"),
            "ratio": _ratio(kib, base and base["rss_per_conn_kib"]),
            "ratio_of": "chatroom / baseline",
            "met": kib is not None and kib <= MEMORY_PER_CONN_KIB,
            "note": "",
        },
    ]


def markdown(results: list[dict], info: dict, rows: list[dict], command: str) -> str:
    date = info["date"]
    lines = [
        f"Measured {date} on {info['cpus']} CPUs ({info['cpu_model'] or 'unknown CPU'}), "
        f"Python {info['python']}, Tornado {info['tornado']}, "
        f"generator processes {info.get('gen_procs', 1)}; chatroom at commit "
        f"{info.get('commit') or '?'}"
        f"{' with uncommitted changes in src/' if info.get('src_modified') else ''}"
        f"{' (src from ' + info['chatroom_src'] + ')' if servers.CHATROOM_SRC else ''}; "
        f"`{command}`.",
        "",
        "| target | baseline | chatroom | ratio | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        met = "–" if r["met"] is None else "met" if r["met"] else "**not met**"
        if r["note"]:
            met += f" ({r['note']})"
        ratio = "–" if r["ratio"] is None else f"{r['ratio']} ({r['ratio_of']})"
        lines.append(
            f"| {r['target']} | {r['baseline'] or '–'} | {r['chatroom']} | {ratio} | {met} |"
        )
    detail = [
        "",
        "| run | deliveries/s | p50 / p99 / max ms | lost / dup / disorder | "
        "server CPU % | CPU µs/delivery | server RSS MiB | generator CPU % | send lag p99 ms | "
        "other load % | archive lag max / p99 s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        step = r if r["scenario"] in ("steady", "uploads") else r.get("best_step")
        if r["scenario"] == "scale":
            step = r["load"]
        if not step:
            continue
        name = f"{r['scenario']}/{r['server']}"
        if r["scenario"] == "steady":
            name += f" #{r['params'].get('repeat', 0) + 1}"
        if r["scenario"] == "uploads":
            name += " uploading" if r["params"].get("uploading") else " no upload"
        if r["scenario"] in ("ramp", "procs", "ceiling"):
            name += f" ×{r['params'].get('processes', 1)} @ {step['rate_per_sender']}/s/sender"
        lat, use = step["latency"], step.get("server_usage") or r.get("server_usage") or {}
        detail.append(
            f"| {name} | {_fmt(step['deliveries_per_s'])} | {_fmt(lat['p50_ms'])} / "
            f"{_fmt(lat['p99_ms'])} / {_fmt(lat['max_ms'])} | {step['lost']} / "
            f"{step['duplicates']} / {step['out_of_order']} | {_fmt(use.get('cpu_pct'))} | "
            f"{_fmt(step.get('server_cpu_us_per_delivery'))} | "
            f"{_fmt(use.get('rss_peak_mib'))} | {_fmt(step['generator_cpu_pct'])} | "
            f"{_fmt(step['send_lag']['p99_ms'])} | {_fmt(use.get('other_load_pct'))} | "
            f"{fmt_lag(step.get('archive_lag'))} |"
        )
    costs = [r for r in results if r["scenario"] == "cost"]
    extra = ["", cost_table(costs).rstrip("\n")] if costs else []
    return "\n".join(lines + (detail if len(detail) > 3 else []) + extra) + "\n"


def gen_procs(value: str) -> int:
    """``--gen-procs``: a count, or ``auto`` (0: ``Bench`` picks, see ``auto_gen_procs``)."""
    if value == "auto":
        return 0
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a positive number or 'auto'")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="chatroom load benchmarks (issue #7)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=(*SCENARIOS, *EXTRA_SCENARIOS, "all"),
        help="repeatable; default all (all but scale, ceiling and cost)",
    )
    parser.add_argument(
        "--server", choices=tuple(SERVER_SETS), default="both",
        help="which servers steady/ramp/idle/memory/scale/ceiling measure: both = baseline and "
        "chatroom; all = these and the Socket.IO baseline (procs, catchup, uploads: chatroom "
        "only)",
    )  # fmt: skip
    parser.add_argument(
        "--gen-procs", type=gen_procs, default=0, metavar="N|auto",
        help="generator processes; auto (default): one per CPU left after the server's",
    )  # fmt: skip
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/generator CPUs")
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="start timed phases at once, without waiting (<= 20 s) for other load to calm down",
    )
    parser.add_argument("--clients", type=int, help="steady/ramp clients (200)")
    parser.add_argument("--rooms", type=int, help="steady/ramp rooms (10)")
    parser.add_argument("--senders", type=int, help="steady/ramp senders (20)")
    parser.add_argument("--rate", type=float, help="steady msg/s per sender (20)")
    parser.add_argument("--seconds", type=float, help="steady duration (20)")
    parser.add_argument("--repeat", type=int, help="steady runs per server, alternated (2)")
    parser.add_argument("--step-seconds", type=float, help="ramp step duration (5)")
    parser.add_argument("--idle-clients", type=int, help="idle clients (2000)")
    parser.add_argument("--catchup-clients", type=int, help="catch-up clients (1000)")
    parser.add_argument("--scale-sockets", type=int, help="scale: idle sockets (10000)")
    parser.add_argument(
        "--scale-idle-seconds",
        type=float,
        help="scale: idle hold measured for CPU (50: two rounds of pings)",
    )
    parser.add_argument(
        "--scale-rate", type=float, help="scale: msg/s per sender (20 senders) of the load (1)"
    )
    add_cost_options(parser)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--chatroom-src",
        type=Path,
        help="import chatroom from this src directory instead of the installed package",
    )
    parser.add_argument(
        "--chatroom-arg", action="append", default=[], metavar="ARG",
        help="one more argument for chatroom serve (repeatable), e.g. --chatroom-arg=--archiver "
        "--chatroom-arg=off",
    )  # fmt: skip
    parser.add_argument(
        "--archive-process", action="store_true",
        help="serve with --archiver off and run 'chatroom archive' beside it (unpinned)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy every send phase into DIR"
    )
    args = parser.parse_args(argv)
    if args.chatroom_src:
        servers.CHATROOM_SRC = str(args.chatroom_src.resolve())
    servers.CHATROOM_ARGS = list(args.chatroom_arg)
    servers.ARCHIVE_PROCESS = args.archive_process

    names = args.scenario or ["all"]
    if "all" in names:
        names = [*SCENARIOS, *(n for n in EXTRA_SCENARIOS if n in names)]
    names = list(dict.fromkeys(names))
    kinds = SERVER_SETS[args.server]
    settings = Settings(
        gen_procs=args.gen_procs,
        pin=not args.no_pin,
        profile_dir=args.profile,
        wait_quiet=not args.no_wait_quiet,
    )
    for attr, value in (
        ("steady_clients", args.clients),
        ("steady_rooms", args.rooms),
        ("steady_senders", args.senders),
        ("steady_rate", args.rate),
        ("steady_seconds", args.seconds),
        ("steady_repeat", args.repeat),
        ("ramp_step_seconds", args.step_seconds),
        ("idle_clients", args.idle_clients),
        ("catchup_clients", args.catchup_clients),
        ("scale_sockets", args.scale_sockets),
        ("scale_idle_seconds", args.scale_idle_seconds),
        ("scale_rate", args.scale_rate),
    ):
        if value is not None:
            setattr(settings, attr, value)

    info = machine()
    now = datetime.datetime.now(datetime.timezone.utc)
    info["date"] = now.strftime("%Y-%m-%d %H:%M UTC")
    run_id = now.strftime("%Y%m%dT%H%M%SZ")
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    print(
        f"chatroom benchmarks {run_id}: {', '.join(names)} on {info['cpus']} CPUs, "
        f"Python {info['python']}, open files {info['nofile']}"
    )
    bench = Bench(settings)
    info["gen_procs"] = settings.gen_procs
    print(
        f"server CPUs {bench.server_cpus or 'any'}, generator CPUs {bench.gen_cpus or 'any'}, "
        f"generator processes {settings.gen_procs}{'' if args.gen_procs else ' (auto)'}"
    )
    started = time.monotonic()
    results: list[dict] = []
    interrupted = False
    try:
        asyncio.run(run_scenarios(names, kinds, bench, results, cost_settings(args)))
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
        print("\ninterrupted: servers stopped; writing the results so far")
    finally:
        bench.close()
    rows = summarize(results)
    table = markdown(results, info, rows, command.strip())
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"{run_id}.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps({"run": run_id, "machine": info, **r}) + "\n")
        f.write(json.dumps({"run": run_id, "machine": info, "summary": rows}) + "\n")
    (args.out / f"{run_id}.md").write_text(table)
    print()
    print(table)
    print(f"results: {args.out / (run_id + '.jsonl')} and .md ({time.monotonic() - started:.0f}s)")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
