"""Real ``chatroom serve`` processes for tests, started and stopped as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

from chatroom.embedded_redis import EmbeddedRedis
from tests.helpers import Api, ChatClient, connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``chatroom serve`` as a child process, as a user would run it."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = {
            **os.environ,
            "CHATROOM_SEND_BURST": "1000",
            "CHATROOM_AUTH_BURST": "1000",
            **(env or {}),
        }
        command = [
            sys.executable,
            "-m",
            "chatroom",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            *args,
        ]
        self.started = time.monotonic()
        # A file, not a pipe: a pipe nobody reads would block a chatty server.
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    async def ready(self, timeout: float = 20) -> float:
        """Wait for /healthz to answer 200; the seconds it took."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.read_output()
            try:
                response = await self.api.request("GET", "/healthz")
                if response.code == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(self.read_output())

    def read_output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def process_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


def redis_pid(data_dir: Path) -> int | None:
    """The pid of the embedded redis-server serving ``data_dir``, if it still runs."""
    try:
        pid = int((data_dir / "redis.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


#: Sockets opened by ``socket_on``; the ``close_opened_sockets`` fixture closes them.
OPENED: list[ChatClient] = []


async def socket_on(host: ServeProcess, token: str, name: str, room: str | None = "lobby"):
    """A user's socket on a serve process, past ``hello`` and (by default) joined."""
    client = ChatClient(await connect(host.ws_url, token), name)
    OPENED.append(client)
    client.hello = await client.next("hello")
    if room:
        await client.join(room)
    return client


@contextlib.asynccontextmanager
async def host_with_own_redis(tmp_path, serve_processes):
    """A serve process on a Redis of the test's own, to kill or freeze; (redis, host)."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = EmbeddedRedis(redis_dir)
    redis.start()
    try:
        host = serve_processes(tmp_path / "host", "--redis-url", redis.url)
        await host.ready()
        yield redis, host
    finally:
        if redis.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(redis.pid, signal.SIGCONT)
        redis.stop()


def archived_ids(data_dir: Path) -> list[int]:
    """The ids in the SQLite archive of a serve process's data directory."""
    with sqlite3.connect(data_dir / "chatroom.db") as db:
        rows = db.execute("SELECT message_id FROM archived_message ORDER BY message_id")
        return [row[0] for row in rows]


async def metric(port: int, name: str) -> float:
    """One series of a process's /metrics."""
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/metrics")
    for line in response.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} on :{port}")


async def until(check, timeout: float = 20, what: str = "") -> None:
    """Wait (bounded) until ``await check()`` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.1)
