"""``chatroom serve --archiver process`` (real processes, real Redis and SQLite): serve
starts one archiver child, which archives while the serving process only measures the
lag; a killed child is restarted and archives what was sent while it was down; the
child stops with serve, also with ``--processes 2``, and does not outlive a serve
that is killed outright."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
import redis

from chatroom.archiver_child import ArchiverChild
from chatroom.config import Config
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models.keys import RedisKeys
from tests.processes import (
    ServeProcess,
    archived_ids,
    free_port,
    metric,
    process_alive,
    socket_on,
    until,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_opened_sockets")]

STARTED = re.compile(r"archiver process started \(pid (\d+)\)")


def archiver_pids(host: ServeProcess) -> list[int]:
    """Every archiver child serve has started, in order (from its log)."""
    return [int(pid) for pid in STARTED.findall(host.read_output())]


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))


@pytest.fixture
def archivers():
    """The archiver pids a test saw: killed at the end, whatever happened."""
    seen: set[int] = set()
    yield seen
    for pid in seen:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


async def start(serve_processes, tmp_path, archivers, *args: str) -> ServeProcess:
    metrics_port = free_port()
    host = serve_processes(
        tmp_path / "data",
        *("--archiver", "process", "--history-size", "5", "--metrics-port", str(metrics_port)),
        *args,
    )
    await host.ready()
    host.metrics_port = metrics_port

    await until(running(host, archivers, 1), what="the archiver process")
    return host


def running(host: ServeProcess, archivers: set[int], count: int):
    """A check: serve has started ``count`` archivers, and the last one is archiving
    (it printed its banner: its signal handlers are in place)."""

    async def check() -> bool:
        pids = archiver_pids(host)
        archivers.update(pids)
        banners = re.findall(r"chatroom archive: from .* \(pid (\d+)\)", host.read_output())
        return len(pids) == count and str(pids[-1]) in banners

    return check


async def send(client, first: int, count: int) -> None:
    for n in range(first, first + count):
        await client.send(f"message {n}", client_id=f"c{n}")
    for _ in range(count):
        await client.next("message")


def all_archived(host: ServeProcess, count: int):
    async def check() -> bool:
        return archived_ids(host.data_dir) == list(range(1, count + 1))

    return check


async def test_serve_archives_through_its_archiver_process(tmp_path, serve_processes, archivers):
    host = await start(serve_processes, tmp_path, archivers)
    [child] = archiver_pids(host)
    assert parent_of(child) == host.process.pid
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    await send(alice, 0, 20)
    await until(all_archived(host, 20), what="20 archived")
    # The child copied them, on the metrics port after serve's own; serve copied none.
    assert await metric(host.metrics_port + 1, "chatroom_archived_messages_total") == 20
    assert await metric(host.metrics_port, "chatroom_archived_messages_total") == 0
    lag = "chatroom_archive_lag_messages"  # measured by serve, from Redis

    async def caught_up() -> bool:
        return await metric(host.metrics_port, lag) == 0

    await until(caught_up, what="serve's lag back to 0")


async def test_a_killed_archiver_is_restarted_and_nothing_sent_meanwhile_is_lost(
    tmp_path, serve_processes, archivers
):
    host = await start(serve_processes, tmp_path, archivers)
    [first] = archiver_pids(host)
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    await send(alice, 0, 10)
    await until(all_archived(host, 10), what="10 archived")
    os.kill(first, signal.SIGKILL)
    await send(alice, 10, 15)  # while no archiver runs (serve notices within a second)

    await until(running(host, archivers, 2), what="a new archiver process")
    second = archiver_pids(host)[1]
    assert second != first and parent_of(second) == host.process.pid
    # The dead child's lock expires (15 s) before the new one may work.
    await until(all_archived(host, 25), timeout=40, what="25 archived")
    # Only the new child can have copied what was sent after the kill.
    assert await metric(host.metrics_port + 1, "chatroom_archived_messages_total") == 15
    assert host.process.poll() is None


async def test_stopping_serve_stops_its_archiver(tmp_path, serve_processes, archivers):
    host = await start(serve_processes, tmp_path, archivers)
    [child] = archiver_pids(host)
    started = time.monotonic()
    code = await asyncio.get_running_loop().run_in_executor(None, host.stop)
    assert code == 0, host.read_output()
    assert time.monotonic() - started < 10
    assert not process_alive(child)
    assert "archiver stopping" in host.read_output()  # it stopped cleanly, not killed
    assert " ERROR " not in host.read_output()


async def test_with_workers_one_archiver_started_by_the_parent(
    tmp_path, serve_processes, archivers
):
    host = await start(serve_processes, tmp_path, archivers, "--processes", "2")
    await asyncio.sleep(1.5)  # time for a worker to start one too, if it did
    [child] = archiver_pids(host)
    assert parent_of(child) == host.process.pid
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    await send(alice, 0, 12)
    await until(all_archived(host, 12), what="12 archived")
    # Its metrics: after both workers' ports.
    assert await metric(host.metrics_port + 2, "chatroom_archived_messages_total") == 12
    os.kill(child, signal.SIGKILL)  # the forking parent restarts it too

    await until(running(host, archivers, 2), what="a new archiver process")
    second = archiver_pids(host)[1]
    code = await asyncio.get_running_loop().run_in_executor(None, host.stop)
    assert code == 0, host.read_output()
    assert not process_alive(second)


async def test_the_archiver_does_not_outlive_a_killed_serve(tmp_path, serve_processes, archivers):
    host = await start(serve_processes, tmp_path, archivers)
    [child] = archiver_pids(host)
    os.kill(host.process.pid, signal.SIGKILL)  # serve alone, not its process group
    host.process.wait()

    async def gone() -> bool:
        return not process_alive(child)

    await until(gone, timeout=15, what="the orphaned archiver to exit")


def test_the_child_gets_serves_settings_in_its_environment_not_its_command_line(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CHATROOM_FILES_URL", "s3://stale/from-the-shell")
    monkeypatch.setenv("CHATROOM_SEND_BURST", "7")  # not the archiver's: left as it is
    config = Config(
        data_dir=tmp_path,
        database_url="postgresql://chat:s3cret@db/chat",
        history_size=7,
        retention_days=0.5,
        metrics_port=9100,
        log_format="json",
    )
    child = ArchiverChild(config, "unix:///run/redis.sock", metrics_port=9102)
    assert "s3cret" not in " ".join(child.command)
    env = child.env
    assert env["CHATROOM_DATABASE_URL"] == "postgresql://chat:s3cret@db/chat"
    assert env["CHATROOM_REDIS_URL"] == "unix:///run/redis.sock"
    assert (env["CHATROOM_HISTORY_SIZE"], env["CHATROOM_RETENTION_DAYS"]) == ("7", "0.5")
    assert (env["CHATROOM_METRICS_PORT"], env["CHATROOM_LOG_FORMAT"]) == ("9102", "json")
    assert env["CHATROOM_DATA_DIR"] == str(tmp_path)
    assert "CHATROOM_FILES_URL" not in env  # serve has none: not the shell's stale one
    assert env["CHATROOM_SEND_BURST"] == "7"


async def test_a_lock_left_in_the_embedded_redis_does_not_hold_the_archiver_back(
    tmp_path, serve_processes, archivers
):
    # A previous run's archiver was killed holding its lock (kept in the AOF, with a
    # minute left): the embedded Redis is this data directory's alone, so serve
    # releases it at start and the new archiver copies at once, not a minute later.
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    embedded = EmbeddedRedis(data_dir)
    embedded.start()
    with redis.Redis.from_url(embedded.url) as client:
        client.set(RedisKeys().archive_lock("archiver"), "a dead archiver", px=60_000)
    embedded.stop()
    host = await start(serve_processes, tmp_path, archivers)
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    await send(alice, 0, 5)
    await until(all_archived(host, 5), timeout=20, what="5 archived before the old lock expired")
