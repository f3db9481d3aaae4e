"""The archiver's own process under ``chatroom serve --archiver process`` (the default
with two CPUs or more): one ``chatroom archive`` child that serve's main process
starts, restarts when it dies and stops with itself; and where ``auto`` puts the archiver.

The child is the same code as ``chatroom archive`` (archive_process.py), on serve's
settings: they reach it in its environment (``CHATROOM_*``, so that a database
password stays out of ``ps``), with serve's Redis as ``--redis-url``. It runs in a
session of its own, so a Ctrl-C to the terminal reaches only serve, which stops it
in order (before the embedded Redis it needs to release its lock); and it gets
SIGTERM from the kernel if serve dies without stopping it (Linux), so it never
outlives serve. See docs/archive.md#the-archivers-own-process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from chatroom.config import Config, Setting, settings
from chatroom.embedded_redis import die_with_parent

log = logging.getLogger(__name__)

#: The settings of ``serve`` that ``chatroom archive`` takes besides the storage ones
#: (cli_archive.py): serve hands its own values to its archiver child.
ARCHIVER_SETTINGS = (
    "history_size",
    "retention_days",
    "files_dir",
    "files_url",
    "db_threads",
    "metrics_port",
    "metrics_host",
    "log_format",
)
#: ``chatroom archive``'s storage options (those of the operator commands).
STORAGE_SETTINGS = ("data_dir", "database_url", "redis_url", "redis_prefix")
#: A child that lived less than this died at once: the next start waits longer.
STEADY_SECONDS = 10.0
#: The n-th quick death in a row waits n times this before the restart, at most 10 s.
RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 10.0
#: How long after its SIGTERM a stop waits for the child (the pass in hand committed,
#: the lock released) before SIGKILL: within SPEC's 10 s exit, as the server's own
#: shutdown runs meanwhile. What a killed child had not committed is
#: copied again by the next archiver; its lock expires by itself (15 s).
STOP_TIMEOUT_SECONDS = 5.0


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def archiver_environment(config: Config, redis_url: str, metrics_port: int) -> dict[str, str]:
    """The environment of the child: serve's own, with the ``CHATROOM_*`` variable of
    every setting ``chatroom archive`` takes set to serve's value (unset: the default)."""
    registry: dict[str, Setting] = {entry.name: entry for entry in settings()}
    values = {name: getattr(config, name) for name in (*STORAGE_SETTINGS, *ARCHIVER_SETTINGS)}
    values.update(redis_url=redis_url, metrics_port=metrics_port)
    env = dict(os.environ)
    for name, value in values.items():
        variable = registry[name].env_var
        if value is None:
            env.pop(variable, None)
        else:
            env[variable] = _env_text(value)
    return env


#: Where ``--archiver`` puts the archiver, as the startup line says it.
PLACEMENT_WORDS = {
    "process": "archiver in its own process",
    "on": "archiver in the serving process",
    "off": "no archiver: 'chatroom archive' runs it",
}


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: what ``taskset`` or a cpuset
    left it), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def archiver_placement(mode: str, cpus: int | None = None) -> str:
    """``--archiver`` with ``auto`` decided: ``process`` where serve may use two CPUs
    or more (the archiver then works beside the sockets, not in their event loop),
    ``on`` with one, where a second process would run on the same core and only add
    its interpreter's memory (about 35 MiB, docs/archive.md#where-the-archiver-runs)."""
    if mode != "auto":
        return mode
    return "process" if (usable_cpus() if cpus is None else cpus) >= 2 else "on"


class ArchiverChild:
    """One ``chatroom archive`` child process of serve's main process."""

    def __init__(self, config: Config, redis_url: str, metrics_port: int = 0) -> None:
        self.command = [sys.executable, "-m", "chatroom", "archive"]
        self.env = archiver_environment(config, redis_url, metrics_port)
        self._process: subprocess.Popen | None = None
        self._owner_pid = os.getpid()
        self._started = 0.0
        self._died: float | None = None
        self._quick_deaths = 0
        self._stopping = False
        self._stop_deadline: float | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the child (again)."""
        self._owner_pid = os.getpid()
        self._process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._started, self._died = time.monotonic(), None
        log.info("archiver process started (pid %d)", self._process.pid)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def owns_pid(self, pid: int) -> bool:
        return self._process is not None and self._process.pid == pid

    def restart_if_dead(self, wait: bool = False) -> bool:
        """Start a new child if this one died; True when it did.

        A child that keeps dying at once (a database it cannot open) is restarted
        after a growing pause: ``wait`` sleeps through it (the forking parent, which
        has nothing else to do), else this returns False until it is over (the
        event loop's supervisor, which asks again a second later).
        """
        if self._stopping or os.getpid() != self._owner_pid or self._process is None:
            return False
        if self.is_running():
            return False
        now = time.monotonic()
        if self._died is None:
            self._died = now
            quick = now - self._started < STEADY_SECONDS
            self._quick_deaths = self._quick_deaths + 1 if quick else 0
            log.error(
                "the archiver process (pid %d) exited with %s; restarting it",
                self._process.pid,
                self._process.returncode,
            )
        pause = min(self._quick_deaths * RESTART_DELAY_SECONDS, MAX_RESTART_DELAY_SECONDS)
        left = self._died + pause - now
        if left > 0:
            if not wait:
                return False
            time.sleep(left)
            if self._stopping:  # told to stop while it paused (a signal handler)
                return False
        self.start()
        return True

    def terminate(self) -> None:
        """SIGTERM, without waiting: it finishes the pass in hand, releases the lock and
        exits. No restart after this; ``stop`` waits for it."""
        self._stopping = True
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        if os.getpid() == self._owner_pid and self.is_running():
            self._process.terminate()

    def stop(self) -> None:
        """Terminate the child (if ``terminate`` has not) and wait for it, SIGKILL if it
        has not exited ``STOP_TIMEOUT_SECONDS`` after its SIGTERM."""
        if os.getpid() != self._owner_pid:
            return  # a forked worker: the parent that started it stops it
        self.terminate()
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(max(0.0, self._stop_deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning(
                "the archiver process did not stop %.0fs after SIGTERM; killing it",
                STOP_TIMEOUT_SECONDS,
            )
            process.kill()
            process.wait()
