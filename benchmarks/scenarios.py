"""The scenarios of issue #7: steady, ramp, idle, processes, catch-up; issue #17's memory.

Each scenario starts its server(s) fresh, drives them with the same generator and
returns one result dict per server measured; ``benchmarks.run`` prints, stores and
tabulates them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import archive_lag
from benchmarks import uploads as upload_bench
from benchmarks.generator import ClientSpec, LoadGenerator, faults
from benchmarks.profile import Profiler
from benchmarks.scale import run_scale
from benchmarks.servers import (
    ChatroomFixture,
    Sampler,
    Server,
    Workspace,
    auto_gen_procs,
    cpu_plan,
    make_accounts,
    room_name,
    start_baseline,
    start_chatroom,
    start_relay,
    user_name,
    wait_quiet,
)

#: Ramp pass criteria (issue #7).
RAMP_P99_MS = 250.0
#: A figure is flagged as the generator's own limit past these.
GEN_CPU_SATURATED_PCT = 90.0
#: Sends firing this late (p99) mean the generator did not keep its schedule.
GEN_LAG_LIMIT_MS = 20.0
#: Other processes on the machine using more than this (% of a CPU) disturb a phase.
OTHER_LOAD_LIMIT_PCT = 50.0


@dataclass
class Settings:
    gen_procs: int = 1  # 0: auto, one per CPU left to the generator (auto_gen_procs)
    pin: bool = True
    steady_clients: int = 200
    steady_rooms: int = 10
    steady_senders: int = 20
    steady_rate: float = 20.0
    steady_seconds: float = 20.0
    text_bytes: int = 64
    ramp_start_rate: float = 20.0
    ramp_factor: float = 1.5
    ramp_step_seconds: float = 5.0
    ramp_max_steps: int = 12
    ramp_refine_steps: int = 2
    ramp_confirm: bool = True
    steady_repeat: int = 2
    wait_quiet: bool = True
    quiet_max_wait: float = 20.0
    idle_clients: int = 2000
    idle_hold_seconds: float = 10.0
    catchup_clients: int = 1000
    catchup_rooms: int = 10
    catchup_missed: int = 50
    users_cap: int = 200
    scale_sockets: int = 10_000
    scale_idle_seconds: float = 50.0
    scale_senders: int = 20
    scale_rate: float = 1.0
    scale_seconds: float = 20.0
    profile_dir: Path | None = None
    interactive: bool = field(default_factory=lambda: sys.stdout.isatty())


def is_saturated(stats: dict) -> bool:
    """The generator used (nearly) all of a CPU: a figure past this is its own limit."""
    return (stats.get("generator_cpu_max_proc_pct") or 0.0) >= GEN_CPU_SATURATED_PCT


def cpu_per_delivery(stats: dict, usage: dict) -> float | None:
    """Server CPU microseconds per delivered frame: the cost figure that noise moves least."""
    if not usage.get("cpu_pct") or not stats.get("deliveries_per_s"):
        return None
    return round(usage["cpu_pct"] * 1e4 / stats["deliveries_per_s"], 2)


def disturbance(stats: dict, usage: dict) -> str:
    """Why a timed phase is not trustworthy ("" when it is): sends fired late, or other
    processes on the (shared) machine were busy."""
    why = []
    lag = (stats.get("send_lag") or {}).get("p99_ms") or 0.0
    if lag > GEN_LAG_LIMIT_MS:
        why.append(f"send lag p99 {lag:.0f} ms")
    other = usage.get("other_load_pct") or 0.0
    if other > OTHER_LOAD_LIMIT_PCT:
        why.append(f"other load {other:.0f}% of a CPU")
    if is_saturated(stats):
        why.append(f"generator CPU {stats.get('generator_cpu_max_proc_pct')}%")
    return ", ".join(why)


class Bench:
    """One benchmark run: a workspace, the accounts fixture, CPU plan, printing."""

    def __init__(self, settings: Settings, log=print) -> None:
        self.s = settings
        self.log = log
        self.workspace = Workspace()
        self.fixture = ChatroomFixture(self.workspace.path)
        self.server_cpus, self.gen_cpus = cpu_plan(settings.pin)
        settings.gen_procs = settings.gen_procs or auto_gen_procs(self.gen_cpus)
        if self.gen_cpus:
            os.sched_setaffinity(0, self.gen_cpus)

    def close(self) -> None:
        self.workspace.cleanup()

    # -- plumbing ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def server(
        self, kind: str, users: int, rooms: int, processes: int = 1, pin=True, extra_args=()
    ):
        """A fresh server of ``kind`` and the accounts (names, tokens) to use with it."""
        cpus = self.server_cpus if pin else None
        if kind == "chatroom":
            accounts = await self.fixture.ensure(users, rooms, log=self.log)
            extra_args = (*extra_args, *archive_lag.metrics_args())
            server = await start_chatroom(
                self.fixture.fresh_copy(), processes, cpus, extra_args=extra_args
            )
            archive_lag.start_sampler(server, extra_args)
        else:  # the baselines and the relay accept anyone: the token is the name
            names = [user_name(i) for i in range(users)]
            accounts = {"users": names, "tokens": names, "rooms": rooms}
            if kind == "relay":  # the cost scenario's floor
                server = await start_relay(self.workspace.path, processes, cpus, extra_args)
            else:
                server = await start_baseline(self.workspace.path, cpus, kind)
        sampler = Sampler(server.pid).start()
        try:
            yield server, accounts, sampler
        finally:
            sampler.stop()
            archive_lag.stop_sampler(server)
            stopped = server.stop()
            if stopped["killed"]:
                self.log(f"  warning: {kind} did not stop on SIGTERM in time; killed")

    def specs(self, accounts: dict, clients: int, rooms: int, senders: int) -> list[ClientSpec]:
        users = accounts["users"]
        tokens = accounts["tokens"]
        return [
            ClientSpec(
                index=i,
                user=users[i % len(users)],
                token=tokens[i % len(tokens)],
                room=room_name(i % rooms),
                sender=i < senders,
            )
            for i in range(clients)
        ]

    def generator(self, server: Server, specs: list[ClientSpec], pin=True) -> LoadGenerator:
        cpus = self.gen_cpus if pin else None
        return LoadGenerator(server.port, specs, self.s.gen_procs, cpus, server.protocol)

    def ticker(self, label: str):
        interactive = self.s.interactive

        def tick(elapsed: float, total: float, p: dict) -> None:
            width = 20
            done = min(width, int(width * elapsed / total))
            bar = "#" * done + "." * (width - done)
            p99 = "-" if p["p99_ms"] is None else f"{p['p99_ms']:.1f}"
            lag = "-" if p["lag_p99_ms"] is None else f"{p['lag_p99_ms']:.1f}"
            line = (
                f"  [{bar}] {label} {elapsed:4.0f}/{total:.0f}s sent {p['sent']} "
                f"acked {p['acked']} delivered {p['delivered']} p99 {p99}ms "
                f"send-lag p99 {lag}ms errors {p['errors']}"
            )
            if interactive:
                print("\r" + line, end="", flush=True)
            else:
                print(line, flush=True)

        return tick

    async def profiled(self, server: Server, name: str, seconds: float, phase):
        """Run ``phase`` (a coroutine), under py-spy when profiling is on."""
        if self.s.profile_dir is None:
            return await phase
        self.s.profile_dir.mkdir(parents=True, exist_ok=True)
        path = self.s.profile_dir / f"{name.replace('/', '-').replace(' ', '-')}.txt"
        profiler = Profiler(server.pid, path, seconds, subprocesses=server.processes > 1)
        try:
            return await phase
        finally:
            report = await asyncio.get_running_loop().run_in_executor(None, profiler.wait)
            self.log(report)

    async def quiet(self, max_wait: float | None = None) -> None:
        """Before a timed phase: wait (bounded) for other load on the machine to calm down."""
        if not self.s.wait_quiet:
            return
        waited, load = await wait_quiet(
            max_wait=self.s.quiet_max_wait if max_wait is None else max_wait
        )
        if waited > 1.5:
            self.log(f"  (waited {waited:.0f}s for other load to calm down: now {load}% of a CPU)")

    def end_ticks(self) -> None:
        if self.s.interactive:
            print(flush=True)

    async def connect_and_join(self, gen: LoadGenerator, label: str, concurrency: int = 50):
        started = time.monotonic()
        connected = await gen.connect(concurrency=concurrency)
        joined = await gen.join(concurrency=concurrency)
        failures = {**connected["failures"], **joined["failures"]}
        hist = connected["hist"]
        self.log(
            f"  {label}: {hist.n} connected, {joined['hist'].n} joined in "
            f"{time.monotonic() - started:.1f}s (connect p50 {hist.percentile(50)} ms"
            f", p99 {hist.percentile(99)} ms){' FAILURES ' + str(failures) if failures else ''}"
        )
        return {
            "connect": connected["hist"].summary(),
            "join": joined["hist"].summary(),
            "setup_failures": failures,
        }

    # -- scenarios -------------------------------------------------------------

    async def steady(self, kind: str, seconds: float | None = None, repeat: int = 0) -> dict:
        s = self.s
        seconds = seconds or s.steady_seconds
        params = {
            "clients": s.steady_clients,
            "rooms": s.steady_rooms,
            "senders": s.steady_senders,
            "rate_per_sender": s.steady_rate,
            "seconds": seconds,
            "text_bytes": s.text_bytes,
            "repeat": repeat,
        }
        users = min(s.steady_clients, s.users_cap)
        async with self.server(kind, users, s.steady_rooms) as (server, accounts, sampler):
            gen = self.generator(
                server, self.specs(accounts, s.steady_clients, s.steady_rooms, s.steady_senders)
            )
            await gen.start()
            try:
                setup = await self.connect_and_join(gen, f"steady/{kind}")
                await self.quiet()
                phase = gen.send_phase(
                    s.steady_rate, seconds, s.text_bytes, 10.0, self.ticker(f"steady/{kind}")
                )
                stats = await self.profiled(server, f"steady-{kind}", seconds, phase)
                self.end_ticks()
            finally:
                await gen.stop()
            window = stats.pop("window")
            server_use = sampler.window(*window)
            stats["archive_lag"] = archive_lag.lag_window(server, *window)
        if stats["archive_lag"]:
            self.log(f"  archive lag max / p99: {archive_lag.fmt_lag(stats['archive_lag'])} s")
        return self._result("steady", kind, params, setup, stats, server_use)

    def _result(self, scenario, kind, params, setup, stats, server_use) -> dict:
        out = {
            "scenario": scenario,
            "server": kind,
            "params": {**params, "gen_procs": self.s.gen_procs, "pinned": bool(self.server_cpus)},
            **setup,
            **stats,
            "server_usage": server_use,
            "generator_saturated": is_saturated(stats),
            "disturbed": disturbance(stats, server_use),
            "server_cpu_us_per_delivery": cpu_per_delivery(stats, server_use),
        }
        lat = stats.get("latency", {})
        self.log(
            f"  -> {scenario}/{kind}: {stats['deliveries_per_s']:.0f} deliveries/s, "
            f"p50 {lat.get('p50_ms')} p99 {lat.get('p99_ms')} max {lat.get('max_ms')} ms, "
            f"lost {stats['lost']} dup {stats['duplicates']} disorder {stats['out_of_order']} "
            f"unacked {stats['unacked']} errors {stats['errors'] or 0}; server CPU "
            f"{server_use.get('cpu_pct')}% ({out['server_cpu_us_per_delivery']} µs/delivery) "
            f"RSS {server_use.get('rss_peak_mib')} MiB; generator "
            f"CPU {stats['generator_cpu_pct']}% lag p99 {stats['send_lag']['p99_ms']} ms; other "
            f"load {server_use.get('other_load_pct')}%"
            f"{' (DISTURBED: ' + out['disturbed'] + ')' if out['disturbed'] else ''}"
        )
        return out

    async def ramp_step(self, gen, server, sampler, name: str, rate: float, steps: list) -> dict:
        """One ramp step: ``rate`` msg/s per sender for ``ramp_step_seconds``, measured and
        judged (``passed``: p99 < RAMP_P99_MS and nothing lost, doubled, reordered,
        unacked, closed or refused); appended to ``steps``."""
        s = self.s
        phase = gen.send_phase(
            rate,
            s.ramp_step_seconds,
            s.text_bytes,
            5.0,
            self.ticker(f"{name} {rate:.0f}/s/sender"),
        )
        tag = f"{name}-{rate:.0f}-{len(steps)}"
        stats = await self.profiled(server, tag, s.ramp_step_seconds, phase)
        self.end_ticks()
        window = stats.pop("window")
        stats["server_usage"] = sampler.window(*window)
        stats["archive_lag"] = archive_lag.lag_window(server, *window)
        stats["rate_per_sender"] = round(rate, 2)
        stats["generator_saturated"] = is_saturated(stats)
        stats["disturbed"] = disturbance(stats, stats["server_usage"])
        stats["server_cpu_us_per_delivery"] = cpu_per_delivery(stats, stats["server_usage"])
        p99 = stats["latency"]["p99_ms"] or 0.0
        stats["bad"] = faults(stats)
        stats["passed"] = p99 < RAMP_P99_MS and stats["bad"] == 0
        steps.append(stats)
        use = stats["server_usage"]
        flag = f" (DISTURBED: {stats['disturbed']})" if stats["disturbed"] else ""
        self.log(
            f"  step {rate:.0f}/s/sender: {stats['deliveries_per_s']:.0f} deliveries/s "
            f"p99 {p99} ms lost {stats['lost']} bad {stats['bad']} server CPU "
            f"{use.get('cpu_pct')}% generator CPU {stats['generator_cpu_pct']}% "
            f"lag p99 {stats['send_lag']['p99_ms']} ms other load "
            f"{use.get('other_load_pct')}% archive lag max / p99 "
            f"{archive_lag.fmt_lag(stats['archive_lag'])} s -> "
            f"{'ok' if stats['passed'] else 'FAIL'}"
            f"{flag}"
        )
        return stats

    async def confirmed_step(self, step, rate: float) -> dict:
        """``await step(rate)``; the machine may be shared, so a failure counts once it
        repeats (twice when the failed run was disturbed): noise only slows a run down."""
        stats = await step(rate)
        attempts = 1
        while (
            self.s.ramp_confirm
            and not stats["passed"]
            and attempts < (3 if stats["disturbed"] else 2)
        ):
            await self.quiet(max_wait=15.0)
            stats = await step(rate)
            stats["confirmation"] = attempts
            attempts += 1
        return stats

    async def ramp(self, kind: str, processes: int = 1, pin: bool = True, label="ramp") -> dict:
        s = self.s
        params = {
            "clients": s.steady_clients,
            "rooms": s.steady_rooms,
            "senders": s.steady_senders,
            "start_rate_per_sender": s.ramp_start_rate,
            "factor": s.ramp_factor,
            "step_seconds": s.ramp_step_seconds,
            "processes": processes,
            "p99_limit_ms": RAMP_P99_MS,
        }
        users = min(s.steady_clients, s.users_cap)
        steps: list[dict] = []
        best: dict | None = None
        stop_reason = "max steps"
        name = f"{label}/{kind}" + (f"x{processes}" if processes > 1 else "")
        async with self.server(kind, users, s.steady_rooms, processes, pin) as (
            server,
            accounts,
            sampler,
        ):
            specs = self.specs(accounts, s.steady_clients, s.steady_rooms, s.steady_senders)
            gen = self.generator(server, specs, pin)
            await gen.start()
            try:
                setup = await self.connect_and_join(gen, name)
                await self.quiet()
                rate = s.ramp_start_rate
                failed_rate: float | None = None
                refined = 0

                async def step(rate: float) -> dict:
                    return await self.ramp_step(gen, server, sampler, name, rate, steps)

                for _ in range(s.ramp_max_steps + s.ramp_refine_steps):
                    stats = await self.confirmed_step(step, rate)
                    p99, bad = stats["latency"]["p99_ms"] or 0.0, stats["bad"]
                    if not stats["passed"]:
                        if stop_reason == "max steps":
                            stop_reason = f"p99 {p99} ms" if p99 >= RAMP_P99_MS else f"{bad} bad"
                        failed_rate = rate if failed_rate is None else min(failed_rate, rate)
                    else:
                        best = (
                            stats
                            if best is None or stats["deliveries_per_s"] > best["deliveries_per_s"]
                            else best
                        )
                        if stats["generator_saturated"]:
                            stop_reason = "generator saturated"
                            break
                    if failed_rate is None:
                        rate *= s.ramp_factor
                        continue
                    # Past the first failure: bisect (geometrically) between the best
                    # passing rate and the lowest failing one, ramp_refine_steps times.
                    if refined >= s.ramp_refine_steps or best is None:
                        break
                    refined += 1
                    rate = (best["rate_per_sender"] * failed_rate) ** 0.5
            finally:
                await gen.stop()
        result = {
            "scenario": label,
            "server": kind,
            "params": {
                **params,
                "gen_procs": s.gen_procs,
                "pinned": bool(pin and self.server_cpus),
            },
            **setup,
            "max_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
            "max_rate_per_sender": best["rate_per_sender"] if best else 0.0,
            "best_step": best,
            "stop_reason": stop_reason,
            "generator_saturated": bool(best and best["generator_saturated"]),
            "steps": steps,
        }
        result["archive_lag"] = archive_lag.run_lag(result)
        self.log(
            f"  -> {name}: highest sustained {result['max_deliveries_per_s']:.0f} deliveries/s "
            f"({result['max_rate_per_sender']}/s per sender); stopped: {stop_reason}"
        )
        return result

    async def idle(self, kind: str) -> dict:
        s = self.s
        n, rooms = s.idle_clients, 10
        users = min(n, s.users_cap)
        async with self.server(kind, users, rooms) as (server, accounts, sampler):
            idle = await self.idle_sockets(kind, server, accounts, sampler, n, rooms)
        result = {
            "scenario": "idle",
            "server": kind,
            "params": {
                "clients": n,
                "rooms": rooms,
                "users": users,
                "hold_seconds": s.idle_hold_seconds,
            },
            **idle,
        }
        self.log(
            f"  -> idle/{kind}: {idle['open_at_end']} open; RSS {result['rss_before_mib']} -> "
            f"{result['rss_after_mib']} MiB = {result['rss_per_conn_kib']} KiB/connection "
            f"(python {result['rss_python_per_conn_kib']}); "
            f"idle CPU {result['idle_server_cpu_pct']}%"
        )
        return result

    async def idle_sockets(self, kind, server, accounts, sampler, n: int, rooms: int) -> dict:
        """Connect ``n`` sockets (joined, then idle): RSS per socket, idle CPU."""
        warm = 20
        specs = self.specs(accounts, n, rooms, 0)
        warm_gen = self.generator(server, specs[:warm])
        gen = self.generator(server, specs[warm:])
        await warm_gen.start()
        await gen.start()
        try:
            await self.connect_and_join(warm_gen, f"idle/{kind} warm-up")
            await asyncio.sleep(1.0)
            rss0, rss0_py = sampler.rss_now()
            setup = await self.connect_and_join(gen, f"idle/{kind}", concurrency=100)
            await asyncio.sleep(2.0)
            t_hold = time.monotonic()
            await asyncio.sleep(self.s.idle_hold_seconds)
            rss1, rss1_py = sampler.rss_now()
            use = sampler.window(t_hold, time.monotonic())
            open_now = await gen.open_count() + await warm_gen.open_count()
        finally:
            await gen.stop()
            await warm_gen.stop()
        added = n - warm
        return {
            **setup,
            "open_at_end": open_now,
            "rss_before_mib": round(rss0 / 2**20, 1),
            "rss_after_mib": round(rss1 / 2**20, 1),
            "rss_per_conn_kib": round((rss1 - rss0) / added / 1024, 1) if rss1 else None,
            "rss_python_per_conn_kib": round((rss1_py - rss0_py) / added / 1024, 1)
            if rss1
            else None,
            "idle_server_cpu_pct": use.get("cpu_pct"),
            "server_usage": use,
        }

    async def memory(self, kind: str) -> dict:
        """Memory at rest (issue #17): a fresh, empty server; 200 users sign up and log in
        (50 at once); its RSS once that burst is over, before any socket; then RSS per
        idle socket at ``idle_clients`` sockets on the same server."""
        s = self.s
        users, rooms, burst = s.users_cap, 10, 50
        workdir = Path(tempfile.mkdtemp(prefix=f"memory-{kind}-", dir=self.workspace.path))
        if kind == "chatroom":
            server = await start_chatroom(workdir, 1, self.server_cpus)
        else:
            server = await start_baseline(workdir, self.server_cpus, kind)
        sampler = Sampler(server.pid).start()
        try:
            await asyncio.sleep(1.0)
            rss_start, rss_start_py = sampler.rss_now()
            seconds: list[float] = []
            started = time.monotonic()
            accounts = await make_accounts(server.port, users, rooms, burst, seconds)
            took = time.monotonic() - started
            await asyncio.sleep(2.0)
            rss_rest, rss_rest_py = sampler.rss_now()
            pss_rest, processes = sampler.pss_now()
            seconds.sort()
            self.log(
                f"  memory/{kind}: {users} sign-ups + logins ({burst} at once) in {took:.1f}s "
                f"(p50 {seconds[len(seconds) // 2] * 1000:.0f} ms, p99 "
                f"{seconds[int(len(seconds) * 0.99)] * 1000:.0f} ms per request); RSS "
                f"{rss_start / 2**20:.1f} -> {rss_rest / 2**20:.1f} MiB "
                f"(python {rss_rest_py / 2**20:.1f}); PSS {pss_rest / 2**20:.1f} MiB "
                f"({processes} processes)"
            )
            idle = await self.idle_sockets(kind, server, accounts, sampler, s.idle_clients, rooms)
        finally:
            sampler.stop()
            server.stop()
        result = {
            "scenario": "memory",
            "server": kind,
            "params": {"users": users, "burst": burst, "clients": s.idle_clients, "rooms": rooms},
            "rss_start_mib": round(rss_start / 2**20, 1),
            "rss_start_python_mib": round(rss_start_py / 2**20, 1),
            "rss_rest_mib": round(rss_rest / 2**20, 1),
            "rss_rest_python_mib": round(rss_rest_py / 2**20, 1),
            "pss_rest_mib": round(pss_rest / 2**20, 1) if pss_rest else None,
            "processes_at_rest": processes,
            "signup_login_s": round(took, 2),
            "request_p50_ms": round(seconds[len(seconds) // 2] * 1000, 1),
            "request_p99_ms": round(seconds[int(len(seconds) * 0.99)] * 1000, 1),
            **idle,
        }
        self.log(
            f"  -> memory/{kind}: at rest after sign-ups {result['rss_rest_mib']} MiB "
            f"(python {result['rss_rest_python_mib']}); {idle['open_at_end']} idle sockets: "
            f"{result['rss_per_conn_kib']} KiB/connection "
            f"(python {result['rss_python_per_conn_kib']})"
        )
        return result

    async def catchup(self, kind: str = "chatroom") -> dict:
        s = self.s
        n, rooms = s.catchup_clients, s.catchup_rooms
        users = min(n, s.users_cap // 2)
        async with self.server(kind, users, rooms) as (server, accounts, sampler):
            gen = self.generator(server, self.specs(accounts, n, rooms, rooms))
            await gen.start()
            try:
                setup = await self.connect_and_join(gen, f"catchup/{kind}", concurrency=100)
                closed = sum(await gen.all("disconnect", which="receivers"))
                self.log(
                    f"  {closed} clients offline; {rooms} senders post {s.catchup_missed} each"
                )
                sent = await gen.send_phase(float(s.catchup_missed), 1.0, s.text_bytes, 10.0)
                acks = await gen.all("wait_acks", timeout=5.0)
                expected: dict[str, int] = {}
                for part in acks:
                    for room, mid in part["max_acked"].items():
                        expected[room] = max(expected.get(room, 0), mid)
                await self.quiet()
                started = time.monotonic()
                storm = await gen.catch_up(expected, timeout=60.0)
                use = sampler.window(started, time.monotonic())
                stats = await gen.all("stats")
            finally:
                await gen.stop()
        hist = storm["hist"]
        result = {
            "scenario": "catchup",
            "server": kind,
            "params": {
                "clients": n,
                "rooms": rooms,
                "users": users,
                "missed_per_room": s.catchup_missed,
            },
            **setup,
            "offline_clients": storm["clients"],
            "sent_while_offline": sent["acked"],
            "caught_up": hist.n,
            "all_caught_up_s": round(storm["all_caught_up_s"], 3)
            if hist.n == storm["clients"]
            else None,
            "catchup_time": hist.summary(),
            "failures": storm["failures"],
            "missed": storm["missed"],
            "replayed": sum(p["replayed"] for p in stats),
            "duplicates": sum(p["duplicates"] for p in stats),
            "out_of_order": sum(p["out_of_order"] for p in stats),
            "gaps_reported": sum(p["gaps_reported"] for p in stats),
            "server_usage": use,
        }
        self.log(
            f"  -> catchup/{kind}: {hist.n}/{storm['clients']} caught up; all in "
            f"{result['all_caught_up_s']} s (p50 {hist.percentile(50)} ms, "
            f"p99 {hist.percentile(99)} ms); replayed {result['replayed']} of "
            f"{result['missed']} missed; dup {result['duplicates']} disorder "
            f"{result['out_of_order']} failures {storm['failures'] or 0}"
        )
        return result

    async def scale(self, kind: str = "chatroom") -> dict:
        """Issue 17: ten thousand sockets on one process of ``kind`` (``benchmarks/scale.py``)."""
        return await run_scale(self, kind)

    async def uploads(self) -> list[dict]:
        """Issue 15: upload throughput (10 MiB, raw and multipart, 1 and 4 uploaders),
        then the steady load without and with a 10 MiB upload streaming, on one server."""
        s = self.s
        users = min(s.steady_clients, s.users_cap)
        params = {
            "clients": s.steady_clients,
            "rooms": s.steady_rooms,
            "senders": s.steady_senders,
            "rate_per_sender": s.steady_rate,
            "seconds": s.steady_seconds,
            "text_bytes": s.text_bytes,
        }
        results: list[dict] = []
        async with self.server("chatroom", users, s.steady_rooms) as (server, accounts, sampler):
            pairs = await upload_bench.uploaders(server.port, accounts["tokens"])
            runs = []
            for multipart in (False, True):
                for uploaders, each in ((1, 3), (4, 2)):
                    await self.quiet()
                    run = await upload_bench.throughput(
                        server.port, pairs, multipart, uploaders, each
                    )
                    self.log(
                        f"  uploads/{run['mode']} x{uploaders}: {run['uploads']} x 10 MiB in "
                        f"{run['wall_s']} s = {run['mb_per_s']} MB/s (one upload p50 "
                        f"{run['upload_s_p50']} s, max {run['upload_s_max']} s)"
                    )
                    runs.append(run)
            results.append(
                {"scenario": "upload-throughput", "server": "chatroom", "params": {}, "runs": runs}
            )
            gen = self.generator(
                server, self.specs(accounts, s.steady_clients, s.steady_rooms, s.steady_senders)
            )
            await gen.start()
            try:
                setup = await self.connect_and_join(gen, "uploads")
                for uploading in (False, True):
                    await self.quiet()
                    label = "uploads/" + ("uploading" if uploading else "no upload")
                    stream = upload_bench.UploadStream(server.port, pairs)
                    if uploading:
                        stream.start()
                    phase = gen.send_phase(
                        s.steady_rate, s.steady_seconds, s.text_bytes, 10.0, self.ticker(label)
                    )
                    stats = await self.profiled(server, label, s.steady_seconds, phase)
                    during = await stream.stop() if uploading else None
                    self.end_ticks()
                    use = sampler.window(*stats.pop("window"))
                    out = self._result(
                        "uploads", "chatroom", {**params, "uploading": uploading}, setup, stats, use
                    )
                    if during is not None:
                        out["uploads_during"] = during
                        self.log(
                            f"  -> while uploading: {during['uploads']} x 10 MiB at "
                            f"{during['mb_per_s']} MB/s, errors {during['errors'] or 0}"
                        )
                    results.append(out)
            finally:
                await gen.stop()
        return results
