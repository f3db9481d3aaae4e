"""The archive's lag during a benchmark (issue 14: "the archiver keeps up with the steady
scenario with lag < 2 s", and the lag under the ramp).

chatroom is started with ``--metrics-port``; a thread polls its first serving
process's ``/metrics`` once a second for ``chatroom_archive_lag_seconds`` (the age of
the oldest message in Redis not yet in SQL, which a serving process measures from
Redis when scraped, at most every 0.5 s, whoever archives) and
``chatroom_archive_lag_messages``.
``window(a, b)`` summarises the samples between two ``time.monotonic()`` instants
(a steady run's or a ramp step's send phase): max and p99 of each.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.request

from benchmarks.servers import Server, free_port, serve_supports

#: The issue's target: the archive at most this far behind during the steady scenario.
LAG_TARGET_S = 2.0
SECONDS = "chatroom_archive_lag_seconds"
MESSAGES = "chatroom_archive_lag_messages"


def metrics_args() -> list[str]:
    """``serve`` options for a metrics listener on a free port (none where this chatroom
    has no ``--metrics-port``, e.g. an old ``--chatroom-src``)."""
    return ["--metrics-port", str(free_port())] if serve_supports("--metrics-port") else []


def metrics_port(args) -> int | None:
    """The port ``metrics_args`` chose, from a serve command line."""
    args = list(args)
    if "--metrics-port" in args:
        return int(args[args.index("--metrics-port") + 1])
    return None


def _percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (a handful of samples: p99 is then close to the max)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class LagSampler:
    """Samples the archive lag of a chatroom server once a second, in a thread."""

    def __init__(self, port: int, interval: float = 1.0) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        #: (monotonic time, lag seconds, lag messages)
        self.samples: list[tuple[float, float, float]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archive-lag", daemon=True)

    def start(self) -> LagSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def sample(self) -> tuple[float, float, float] | None:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            self.failures += 1
            return None
        found = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in (SECONDS, MESSAGES):
                found[name] = float(value)
        if len(found) < 2:  # a chatroom without the archive
            return None
        return time.monotonic(), found[SECONDS], found[MESSAGES]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            row = self.sample()
            if row is not None:
                self.samples.append(row)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def window(self, start: float, end: float) -> dict:
        """The lag between two instants: samples, max and p99 of the seconds and the
        messages behind."""
        rows = [r for r in self.samples if start <= r[0] <= end]
        seconds, messages = [r[1] for r in rows], [r[2] for r in rows]
        return {
            "samples": len(rows),
            "max_s": round(max(seconds), 2) if rows else None,
            "p99_s": round(_percentile(seconds, 99), 2) if rows else None,
            "max_messages": int(max(messages)) if rows else None,
            "p99_messages": int(_percentile(messages, 99)) if rows else None,
        }


def start_sampler(server: Server, args) -> None:
    """Sample the lag of a chatroom started with ``args`` (as ``server.extra``'s
    ``archive_lag``) when they hold a metrics port."""
    port = metrics_port(args)
    if port is not None:
        server.extra["archive_lag"] = LagSampler(port).start()


def stop_sampler(server: Server) -> None:
    sampler = server.extra.pop("archive_lag", None)
    if sampler is not None:
        sampler.stop()


def lag_window(server: Server, start: float, end: float) -> dict | None:
    """The archive lag of ``server`` during a phase; None where it is not sampled."""
    sampler = server.extra.get("archive_lag")
    return sampler.window(start, end) if sampler is not None else None


def run_lag(result: dict) -> dict | None:
    """The whole run's lag: its own (steady), or the worst of its steps (a ramp: the
    highest max, and the highest of the steps' p99)."""
    windows = [s.get("archive_lag") for s in result.get("steps") or [result]]
    windows = [w for w in windows if w and w["samples"]]
    if not windows:
        return None
    return {
        "samples": sum(w["samples"] for w in windows),
        "max_s": max(w["max_s"] for w in windows),
        "p99_s": max(w["p99_s"] for w in windows),
        "max_messages": max(w["max_messages"] for w in windows),
    }


def fmt_lag(lag: dict | None) -> str:
    """``max / p99 s`` for a table cell."""
    if not lag or not lag["samples"]:
        return "–"
    return f"{lag['max_s']:.1f} / {lag['p99_s']:.1f}"


def lag_rows(results: list[dict], fmt) -> list[dict]:
    """Issue 14's lag targets, for ``benchmarks.run``'s summary table."""
    rows = []
    steady = [r for r in results if r["scenario"] == "steady" and r["server"] == "chatroom"]
    lags = [lag for lag in map(run_lag, steady) if lag]
    if lags:
        lag = max(lags, key=lambda one: one["max_s"])  # the worst run
        rows.append(
            {
                "target": f"steady: archive lag < {LAG_TARGET_S:.0f} s",
                "baseline": None,
                "chatroom": f"max {fmt(lag['max_s'], ' s')}, p99 {fmt(lag['p99_s'], ' s')} "
                f"({lag['max_messages']} messages; worst of {len(lags)} runs)",
                "ratio": round(lag["max_s"] / LAG_TARGET_S, 2),
                "ratio_of": f"max lag / {LAG_TARGET_S:.0f} s",
                "met": lag["max_s"] < LAG_TARGET_S,
                "note": "",
            }
        )
    for r in results:
        if r["scenario"] not in ("ramp", "procs") or r["server"] != "chatroom":
            continue
        lag, best = run_lag(r), (r.get("best_step") or {}).get("archive_lag")
        if not lag:
            continue
        processes = r["params"].get("processes", 1)
        rows.append(
            {
                "target": f"{r['scenario']} ×{processes}: archive lag (measured, no target)",
                "baseline": None,
                "chatroom": f"at the best step: max {fmt(best and best['max_s'], ' s')}; "
                f"every step: max {fmt(lag['max_s'], ' s')} ({lag['max_messages']} messages)",
                "ratio": None,
                "ratio_of": "",
                "met": None,
                "note": "",
            }
        )
    return rows
