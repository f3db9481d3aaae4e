"""benchmarks/archive_lag.py: the archive lag a benchmark samples, summed up per phase,
per run and in the summary table (no server, no timing: samples given)."""

from __future__ import annotations

from benchmarks.archive_lag import LagSampler, fmt_lag, lag_rows, metrics_port, run_lag


def sampler(*rows: tuple[float, float, float]) -> LagSampler:
    lag = LagSampler(port=1)
    lag.samples = list(rows)
    return lag


def test_a_window_takes_the_samples_between_its_instants():
    lag = sampler((1.0, 9.0, 900), (2.0, 0.4, 40), (3.0, 1.6, 160), (4.0, 0.2, 20), (9.0, 7, 7))
    window = lag.window(1.5, 4.0)
    assert window == {
        "samples": 3,
        "max_s": 1.6,
        "p99_s": 1.6,
        "max_messages": 160,
        "p99_messages": 160,
    }
    assert lag.window(5.0, 8.0)["samples"] == 0
    assert fmt_lag(window) == "1.6 / 1.6" and fmt_lag(lag.window(5.0, 8.0)) == "–"


def test_p99_of_many_samples_leaves_out_the_single_worst():
    lag = sampler(*((float(i), 0.5, 1) for i in range(199)), (199.0, 30.0, 3000))
    window = lag.window(0, 200)
    assert (window["max_s"], window["p99_s"]) == (30.0, 0.5)


def step(max_s: float, p99_s: float, messages: int = 10) -> dict:
    return {"samples": 5, "max_s": max_s, "p99_s": p99_s, "max_messages": messages}


def fmt(value, unit=""):
    return "–" if value is None else f"{value}{unit}"


def test_a_ramp_reports_its_worst_step_and_its_best_steps_lag():
    ramp = {
        "scenario": "ramp",
        "server": "chatroom",
        "params": {"processes": 1},
        "steps": [{"archive_lag": step(0.5, 0.5)}, {"archive_lag": step(4.0, 3.0, 900)}],
        "best_step": {"archive_lag": step(0.5, 0.5)},
    }
    assert run_lag(ramp) == {"samples": 10, "max_s": 4.0, "p99_s": 3.0, "max_messages": 900}
    [row] = lag_rows([ramp], fmt)
    assert row["chatroom"] == "at the best step: max 0.5 s; every step: max 4.0 s (900 messages)"
    assert row["met"] is None


def test_steady_meets_the_target_only_when_every_run_stays_under_2_s():
    runs = [
        {"scenario": "steady", "server": "chatroom", "archive_lag": step(0.6, 0.6)},
        {"scenario": "steady", "server": "chatroom", "archive_lag": step(2.5, 2.5)},
        {"scenario": "steady", "server": "baseline", "archive_lag": None},
    ]
    [row] = lag_rows(runs, fmt)
    assert row["met"] is False and row["chatroom"].startswith("max 2.5 s")
    [row] = lag_rows(runs[:1], fmt)
    assert row["met"] is True
    assert lag_rows([{**runs[0], "archive_lag": None}], fmt) == []


def test_the_metrics_port_is_read_back_from_the_serve_arguments():
    assert metrics_port(("--processes", "2", "--metrics-port", "9100")) == 9100
    assert metrics_port(()) is None
