"""``python -m benchmarks.features``: what each feature of the round costs, per delivery
(issue 17 target 4).

The ramp's top step moves ±10 % between single runs, too coarse to tell whether a
feature keeps 95 % of the sustained deliveries/s. This measures instead, at one fixed
load well below saturation (the ramp's 200 clients, 10 rooms, 20 senders, at
``--rate`` msg/s per sender), the server's CPU µs per delivery — the CPU time of the
server's process tree, embedded Redis included, over the frames delivered — for a list
of labelled trees (commits, extracted with ``git archive``), the trees interleaved in
rounds (A B C … A B C …) so that a machine's drift hits each alike. Per tree: the
median over the rounds and its spread; per feature (a before and an after tree): the
after/before ratio of deliveries per CPU-second (1e6 / µs per delivery), the capacity
a server bound by one core sustains, judged against 0.95 (0.90 for the archiver).
Loss, duplicate and order checks stay on: a trial with any is counted ``bad`` and the
run exits 1. ``--ramp`` also runs the ramp once per tree, for the absolute figure.

Examples::

    python -m benchmarks.features --list                  # the trees and features, resolved
    python -m benchmarks.features                         # the round's features, 3 rounds
    python -m benchmarks.features --tree old=3b5c509 --tree new=main --rounds 5
    python -m benchmarks.features --tree on=main --tree "off=main:--archiver off" \\
        --feature "archiver=off,on,0.90"
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import signal
import sys
import time
from pathlib import Path

from benchmarks import servers
from benchmarks.feature_trees import ROOT, WORKTREE, Prepared, Tree, git, plan, prepare, use
from benchmarks.features_report import feature_rows, feature_table, tree_table
from benchmarks.generator import faults
from benchmarks.scenarios import Bench, Settings, disturbance

RESULTS = ROOT / "benchmarks" / "results"
#: A step whose server used this much of its pinned CPUs is saturated: lower ``--rate``.
SATURATED_PCT = 90.0


def cpu_split(pid: int) -> dict[str, float]:
    """CPU seconds of the server's process tree: Python processes and Redis apart."""
    psutil = servers.psutil
    out = {"python": 0.0, "redis": 0.0}
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times, name = proc.cpu_times(), proc.name().lower()
        except psutil.Error:
            continue
        out["redis" if "redis" in name else "python"] += times.user + times.system
    return out


async def trial(
    bench: Bench, tree: Prepared, rnd: int, rate: float, seconds: float, warmup: float
) -> dict:
    """One tree, one round: a fresh server, the clients joined, a warm-up, then ``seconds``
    at ``rate`` per sender; server CPU from just before the phase to the end of its drain."""
    s, label = bench.s, f"features/{tree.tree.label} #{rnd + 1}"
    use(bench, tree)
    users = min(s.steady_clients, s.users_cap)
    async with bench.server("chatroom", users, s.steady_rooms) as (server, accounts, sampler):
        specs = bench.specs(accounts, s.steady_clients, s.steady_rooms, s.steady_senders)
        gen = bench.generator(server, specs)
        await gen.start()
        try:
            setup = await bench.connect_and_join(gen, label)
            await bench.quiet()
            warm_bad = 0
            if warmup > 0:
                warm = await gen.send_phase(rate, warmup, s.text_bytes, 10.0)
                warm_bad = faults(warm)
            cpu0 = cpu_split(server.pid)
            stats = await gen.send_phase(rate, seconds, s.text_bytes, 10.0, bench.ticker(label))
            cpu1 = cpu_split(server.pid)
            bench.end_ticks()
        finally:
            await gen.stop()
        usage = sampler.window(*stats.pop("window"))
    delivered = max(1, stats["delivered"])
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    us = (cpu["python"] + cpu["redis"]) / delivered * 1e6
    cpus = len(bench.server_cpus or [0])
    result = {
        "scenario": "features",
        "server": "chatroom",
        "tree": tree.tree.label,
        "commit": tree.commit,
        "archiver": tree.archiver,
        "serve_args": tree.extra,
        "round": rnd,
        "params": {
            "clients": s.steady_clients,
            "rooms": s.steady_rooms,
            "senders": s.steady_senders,
            "rate_per_sender": rate,
            "seconds": seconds,
            "warmup_seconds": warmup,
            "gen_procs": s.gen_procs,
            "pinned": bool(bench.server_cpus),
        },
        **setup,
        **stats,
        "server_usage": usage,
        "server_cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "us_per_delivery": round(us, 3),
        "python_us_per_delivery": round(cpu["python"] / delivered * 1e6, 3),
        "redis_us_per_delivery": round(cpu["redis"] / delivered * 1e6, 3),
        "bad": faults(stats) + warm_bad,
        "disturbed": disturbance(stats, usage),
        "saturated": (usage.get("cpu_pct") or 0.0) >= SATURATED_PCT * cpus,
    }
    bench.log(
        f"  -> {label}: {stats['deliveries_per_s']:.0f} deliveries/s, {us:.2f} µs/delivery "
        f"(Python {result['python_us_per_delivery']}, Redis {result['redis_us_per_delivery']}), "
        f"server CPU {usage.get('cpu_pct')}%, p99 {stats['latency']['p99_ms']} ms, bad "
        f"{result['bad']}, other load {usage.get('other_load_pct')}%"
        f"{' SATURATED: lower --rate' if result['saturated'] else ''}"
        f"{' (DISTURBED: ' + result['disturbed'] + ')' if result['disturbed'] else ''}"
    )
    return result


async def measure(
    bench: Bench, trees: list[Tree], args: argparse.Namespace, results: list[dict]
) -> None:
    """Prepare every tree, then the rounds, interleaved; then the ramps (``--ramp``)."""
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    prepared = await prepare(bench, trees, args.archiver)
    for rnd in range(args.rounds):
        bench.log(f"== round {rnd + 1} of {args.rounds} ==")
        for tree in prepared:
            try:
                results.append(await trial(bench, tree, rnd, args.rate, args.seconds, args.warmup))
            except Exception as e:  # a server that would not start or died: the others go on
                bench.log(f"  !! features/{tree.tree.label} #{rnd + 1} failed: {e}")
                results.append({"scenario": "features", "tree": tree.tree.label, "round": rnd,
                                "commit": tree.commit, "error": str(e), "bad": 1})  # fmt: skip
    if args.ramp:
        for tree in prepared:
            use(bench, tree)
            ramp = await bench.ramp("chatroom", label="features-ramp")
            results.append({**ramp, "tree": tree.tree.label, "commit": tree.commit})


def main(argv: list[str] | None = None) -> int:
    from benchmarks.run import gen_procs, machine  # run.py's options, not its scenarios

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.features", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=REV[:ARGS]",
        help="a tree to measure (repeatable; default: the round's features)",
    )
    parser.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME=BEFORE,AFTER[,THRESHOLD]",
        help="a comparison of two tree labels (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every tree (3)")
    parser.add_argument(
        "--rate",
        type=float,
        default=30.0,
        help="msg/s per sender, well below saturation (30: 12,000 deliveries/s at 20 senders)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first (5)")
    parser.add_argument(
        "--archiver",
        choices=("on", "off"),
        help="--archiver for every tree whose serve has it (default: its own)",
    )
    parser.add_argument("--ramp", action="store_true", help="also one ramp per tree")
    parser.add_argument("--step-seconds", type=float, help="ramp step duration (5)")
    parser.add_argument("--clients", type=int, help="clients (200)")
    parser.add_argument("--rooms", type=int, help="rooms (10)")
    parser.add_argument("--senders", type=int, help="senders (20)")
    parser.add_argument("--gen-procs", type=gen_procs, default=0, metavar="N|auto")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/generator CPUs")
    parser.add_argument(
        "--no-wait-quiet",
        action="store_true",
        help="start timed phases at once, without waiting for quiet",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    try:
        trees, features = plan(args.tree, args.feature)
        if args.list:
            for t in trees:
                commit = (
                    t.rev
                    if t.rev == WORKTREE or Path(t.rev).is_dir()
                    else git("rev-parse", "--short", "--verify", f"{t.rev}^{{commit}}")
                )
                print(f"tree {t.label}: {commit} {' '.join(t.args)}".rstrip())
            for f in features:
                print(f"feature {f.name}: {f.before} -> {f.after}, threshold {f.threshold}")
            return 0
    except ValueError as e:
        parser.error(str(e))
    settings = Settings(
        gen_procs=args.gen_procs, pin=not args.no_pin, wait_quiet=not args.no_wait_quiet
    )
    for attr, value in (
        ("steady_clients", args.clients),
        ("steady_rooms", args.rooms),
        ("steady_senders", args.senders),
        ("ramp_step_seconds", args.step_seconds),
    ):
        if value is not None:
            setattr(settings, attr, value)
    if servers.psutil is None:
        parser.error("needs psutil: pip install -r benchmarks/requirements.txt")
    info = machine()
    now = datetime.datetime.now(datetime.timezone.utc)
    info["date"], run_id = now.strftime("%Y-%m-%d %H:%M UTC"), now.strftime("%Y%m%dT%H%M%SZ")
    print(
        f"features {run_id}: {len(trees)} trees × {args.rounds} rounds at {args.rate} msg/s "
        f"per sender, {args.seconds:g} s each (+{args.warmup:g} s warm-up)"
    )
    bench = Bench(settings)
    started, results, interrupted = time.monotonic(), [], False
    try:
        asyncio.run(measure(bench, trees, args, results))
    except (asyncio.CancelledError, KeyboardInterrupt):
        interrupted = True
        print("\ninterrupted: servers stopped; writing the results so far")
    except ValueError as e:  # a tree that cannot be extracted or served as asked
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        bench.close()
    rows = feature_rows(results, features)
    command = "python -m benchmarks.features " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    table = (
        f"Measured {info['date']} on {info['cpus']} CPUs ({info['cpu_model'] or '?'}), Python "
        f"{info['python']}, {args.rate:g} msg/s per sender × {settings.steady_senders} senders, "
        f"{args.seconds:g} s × {args.rounds} rounds; `{command.strip()}`.\n\n"
        + tree_table(results, [t.label for t in trees])
        + "\n"
        + feature_table(rows)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"{run_id}-features.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps({"run": run_id, "machine": info, **r}) + "\n")
        f.write(json.dumps({"run": run_id, "machine": info, "features": rows}) + "\n")
    (args.out / f"{run_id}-features.md").write_text(table)
    print("\n" + table)
    print(
        f"results: {args.out / (run_id + '-features.jsonl')} and .md "
        f"({time.monotonic() - started:.0f}s)"
    )
    if interrupted:
        return 130
    return 1 if any(r.get("bad") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
