"""``--archiver auto`` (the default): ``chatroom serve`` on one CPU archives in the
serving process (no second interpreter for a core it would share), on two or more in
a process of its own; the startup line says which. Real ``serve`` processes pinned
with the kernel's CPU affinity, real Redis and SQLite."""

from __future__ import annotations

import contextlib
import os

import pytest

from chatroom.archiver_child import archiver_placement, usable_cpus
from chatroom.config import ARCHIVER_MODES, Config
from tests.processes import ServeProcess, archived_ids, socket_on, until
from tests.test_archiver_process import archiver_pids, send

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_opened_sockets")]


def test_auto_is_the_default_and_decides_by_the_cpus():
    assert Config().archiver == "auto"
    assert archiver_placement("auto", cpus=1) == "on"
    assert archiver_placement("auto", cpus=2) == "process"
    assert archiver_placement("auto", cpus=16) == "process"
    for mode in ARCHIVER_MODES[1:]:  # a named mode is kept, whatever the CPUs
        assert archiver_placement(mode, cpus=1) == archiver_placement(mode, cpus=8) == mode


def test_auto_reads_the_affinity_of_this_process():
    assert usable_cpus() == len(os.sched_getaffinity(0))
    expected = "process" if usable_cpus() >= 2 else "on"
    assert archiver_placement("auto") == expected


@contextlib.contextmanager
def pinned_to_one_cpu():
    """This process on one CPU while inside: a child started meanwhile inherits it."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def start(serve_processes, tmp_path, one_cpu: bool) -> ServeProcess:
    with pinned_to_one_cpu() if one_cpu else contextlib.nullcontext():
        host = serve_processes(tmp_path / "data", "--history-size", "5")
    await host.ready()
    return host


async def test_on_one_cpu_the_serving_process_archives(tmp_path, serve_processes):
    host = await start(serve_processes, tmp_path, one_cpu=True)
    assert "archiver in the serving process" in host.read_output()
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    await send(alice, 0, 12)

    async def archived() -> bool:
        return archived_ids(host.data_dir) == list(range(1, 13))

    await until(archived, what="12 archived by the serving process")
    assert archiver_pids(host) == []  # no child was started for it


async def test_with_more_cpus_it_gets_a_process_of_its_own(tmp_path, serve_processes):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("this test needs two CPUs, as CI has")
    host = await start(serve_processes, tmp_path, one_cpu=False)
    assert "archiver in its own process" in host.read_output()

    async def started() -> bool:
        return len(archiver_pids(host)) == 1

    await until(started, what="the archiver process")
