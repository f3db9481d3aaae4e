"""The memory scenario's tree figures: PSS counts a page shared by two processes once
in all, where RSS counts it in each (serve and its archiver child share their
libraries), and the summary row shows it beside RSS. Real processes, read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks import run
from benchmarks.servers import Sampler

CHILD = "import time, redis, tornado.web; time.sleep(30)"


def test_pss_of_a_tree_of_two_interpreters_is_below_their_rss_sum():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])",
        ]
    )
    try:
        sampler = Sampler(parent.pid)
        for _ in range(100):  # until the child has imported (its RSS stops at tens of MiB)
            rss, _ = sampler.rss_now()
            pss, processes = sampler.pss_now()
            if processes == 2 and rss > 40 * 2**20:
                break
            time.sleep(0.1)
        assert processes == 2
        # Both share the interpreter's and the libraries' pages: PSS counts them once.
        assert 0 < pss < rss
    finally:
        parent.kill()
        parent.wait()
        subprocess.run(["pkill", "-f", CHILD], check=False)


def test_the_memory_row_names_pss_and_the_processes():
    chat = {
        "scenario": "memory",
        "server": "chatroom",
        "params": {"users": 200, "clients": 2000},
        "rss_rest_mib": 70.0,
        "rss_rest_python_mib": 66.0,
        "pss_rest_mib": 55.5,
        "processes_at_rest": 2,
        "request_p99_ms": 900.0,
        "rss_per_conn_kib": 15.0,
    }
    [rest, _] = run.memory_rows([chat])
    assert rest["met"] and "PSS 55.5 MiB over 2 processes" in rest["note"]
    [rest, _] = run.memory_rows([{**chat, "rss_rest_mib": 81.0}])
    assert not rest["met"]
