"""``chatroom serve --archiver off`` with a ``chatroom archive`` process beside it (real
processes): the server archives nothing but still reports the archive's lag; the
archive process copies everything, stops cleanly on SIGTERM (the batches in hand
committed, the lock released) and resumes without a duplicate or a gap."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from chatroom.cli import main
from chatroom.models import MessageRepository, RedisKeys
from chatroom.storage import make_redis
from tests.helpers import body
from tests.processes import ServeProcess, archived_ids, free_port, metric, socket_on, until

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_opened_sockets")]

LOCK = "chatroom:lock:archiver"
#: Messages waiting when the archive process starts: enough for several passes.
BACKLOG = 30_000


class ArchiveProcess:
    """``chatroom archive`` as a child process, as an operator would run it."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.metrics_port = free_port()
        self.log_path = data_dir.parent / f"archive-{self.metrics_port}.log"
        command = [
            *(sys.executable, "-m", "chatroom", "archive", "--data-dir", str(data_dir)),
            *("--history-size", "5", "--metrics-port", str(self.metrics_port), *args),
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def archive_processes():
    started: list[ArchiveProcess] = []

    def start(data_dir: Path, *args: str) -> ArchiveProcess:
        started.append(ArchiveProcess(data_dir, *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
async def server(tmp_path, serve_processes) -> ServeProcess:
    metrics_port = free_port()
    host = serve_processes(
        tmp_path / "data",
        *("--archiver", "off", "--history-size", "5", "--metrics-port", str(metrics_port)),
    )
    await host.ready()
    host.metrics_port = metrics_port
    return host


def embedded_redis(data_dir: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(data_dir / "redis.sock"))


async def test_a_server_with_the_archiver_off_and_an_archive_process(server, archive_processes):
    data_dir = server.data_dir
    alice = await socket_on(server, await server.api.user("alice"), "alice")
    for n in range(30):
        await alice.send(f"message {n}", client_id=f"c{n}")
    for _ in range(30):
        await alice.next("message")
    await asyncio.sleep(1.5)  # three passes of an archiver, if this server ran one
    assert archived_ids(data_dir) == []
    assert embedded_redis(data_dir).llen("chatroom:{lobby}:log") == 30  # kept: not archived
    # The server still reports the archive's lag, from Redis: not 0.
    lag = "chatroom_archive_lag_messages"
    await until(lambda: _equals(metric(server.metrics_port, lag), 30), what="the lag of 30")
    assert await metric(server.metrics_port, "chatroom_archive_lag_seconds") > 1
    health = body(await server.api.request("GET", "/healthz"))
    assert (health["status"], health["archive"]) == ("ok", "ok")  # behind only after 60 s

    archiver = archive_processes(data_dir)

    async def all_there(count: int) -> bool:
        return archived_ids(data_dir) == list(range(1, count + 1))

    await until(lambda: all_there(30), what="30 archived")
    await until(lambda: _equals(metric(server.metrics_port, lag), 0), what="the lag back to 0")
    archived = await metric(archiver.metrics_port, "chatroom_archived_messages_total")
    assert archived == 30
    for n in range(30, 40):
        await alice.send(f"message {n}", client_id=f"c{n}")
    await until(lambda: all_there(40), what="40 archived")
    assert embedded_redis(data_dir).llen("chatroom:{lobby}:log") == 5  # trimmed back
    assert archiver.stop() == 0, archiver.output()
    assert embedded_redis(data_dir).get(LOCK) is None  # released, not left to expire


async def _equals(value, expected: float) -> bool:
    return await value == expected


async def test_sigterm_finishes_the_batches_in_hand_and_a_restart_resumes(
    server, archive_processes
):
    data_dir = server.data_dir
    client = make_redis(f"unix://{data_dir / 'redis.sock'}")
    messages = MessageRepository(client, RedisKeys(), 5)
    for start in range(0, BACKLOG, 1000):  # a backlog, straight into the server's Redis
        sends = (messages.append("lobby", "bob", f"m{start + n}") for n in range(1000))
        await asyncio.gather(*sends)
    archiver = archive_processes(data_dir)

    async def some_archived() -> bool:
        return len(archived_ids(data_dir)) > 0

    await until(some_archived, what="a first batch")
    started = time.monotonic()
    assert archiver.stop() == 0, archiver.output()
    assert time.monotonic() - started < 10
    ids = archived_ids(data_dir)
    mark = int(embedded_redis(data_dir).get("chatroom:{lobby}:archived"))
    assert ids == list(range(1, mark + 1))  # no gap; the watermark is what SQL holds
    assert embedded_redis(data_dir).get(LOCK) is None
    again = archive_processes(data_dir)

    async def all_archived() -> bool:
        return archived_ids(data_dir) == list(range(1, BACKLOG + 1))

    await until(all_archived, timeout=60, what="the backlog archived")
    assert again.stop() == 0
    await client.aclose()
    await client.connection_pool.disconnect()


def test_archive_without_a_running_server_or_a_redis_url_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["archive", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "no chatroom server is using" in result.output
    assert "--redis-url" in result.output


def test_archive_refuses_bad_settings(tmp_path):
    for args in (["--history-size", "0"], ["--retention-days", "-1"], ["--db-threads", "0"]):
        result = CliRunner().invoke(main, ["archive", "--data-dir", str(tmp_path), *args])
        assert result.exit_code == 2, (args, result.output)
