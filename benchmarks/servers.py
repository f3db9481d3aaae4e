"""Starting and stopping the servers under test, accounts for the clients, and a sampler
for CPU% and RSS of a process tree.

Servers run as child processes (in a session of their own) through
``benchmarks.launch``, which pins them to CPUs and raises their open-files limit
before ``exec``; they listen on 127.0.0.1 only and are always stopped, with
SIGKILL for whatever is left after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.wsclient import http_json

try:
    import psutil
except ImportError:  # the benchmarks run without it; CPU% and RSS are then not reported
    psutil = None

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
#: chatroom's limits lifted for benchmarks: the per-user send rate (SPEC's default is 10
#: at once, 2/s) and, where this chatroom has it, the per-address login/register throttle
#: (every benchmark client comes from 127.0.0.1).
UNLIMITED = ["--send-burst", "1000000", "--send-per-second", "1000000"]
UNLIMITED_IF_SUPPORTED = ["--auth-burst", "1000000", "--auth-per-minute", "1000000"]
_serve_help: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_plan(separate: bool = True) -> tuple[list[int] | None, list[int] | None]:
    """(server CPUs, generator CPUs): disjoint halves when there are 2+ CPUs, else None."""
    cpus = sorted(os.sched_getaffinity(0))
    if not separate or len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return cpus[:half], cpus[half:]


def auto_gen_procs(gen_cpus: list[int] | None) -> int:
    """``--gen-procs auto``: one generator process per CPU left to the generator by the
    server's pinned CPUs (``cpu_plan``); unpinned, as if pinned: half the usable CPUs."""
    return len(gen_cpus) if gen_cpus else max(1, len(os.sched_getaffinity(0)) // 2)


@dataclass
class Server:
    kind: str  # "chatroom", "baseline", "socketio" or "relay"
    port: int
    process: subprocess.Popen
    workdir: Path
    log_path: Path
    _log: object = None
    processes: int = 1
    extra: dict = field(default_factory=dict)
    #: What the generator speaks to it (``LoadGenerator(protocol=...)``).
    protocol: str = "chatroom"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, grace: float = 15.0) -> dict:
        """SIGTERM, wait, then SIGKILL the whole process group; how it went."""
        if "archiver" in self.extra:  # --archive-process: it goes first, Redis is the server's
            self.extra.pop("archiver").stop(grace)
        out = {"exit_code": None, "killed": False}
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                out["killed"] = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        out["exit_code"] = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return out

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


#: Where chatroom is imported from: the installed package, or (``--chatroom-src`` /
#: CHATROOM_BENCH_SRC) another checkout's ``src`` directory, e.g. a ``git archive`` of HEAD.
CHATROOM_SRC = os.environ.get("CHATROOM_BENCH_SRC", "")
#: More ``serve`` options for every chatroom started (``--chatroom-arg``), e.g.
#: ``--archiver off``.
CHATROOM_ARGS: list[str] = []
#: ``--archive-process``: chatroom serves with ``--archiver off`` and a ``chatroom
#: archive`` process (unpinned, not in the server's CPU figures) archives beside it.
ARCHIVE_PROCESS = False


def _env() -> dict:
    path = [p for p in (CHATROOM_SRC, str(ROOT), os.environ.get("PYTHONPATH", "")) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def serve_supports(option: str) -> bool:
    """Whether this chatroom's ``serve`` has ``option`` (an older ``--chatroom-src`` may not)."""
    serve_options()
    return option in _serve_help[CHATROOM_SRC]


def serve_options() -> list[str]:
    """The limit-lifting options that this chatroom's ``serve`` accepts."""
    if CHATROOM_SRC not in _serve_help:
        help_text = subprocess.run(
            [sys.executable, "-m", "chatroom", "serve", "--help"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        ).stdout
        _serve_help[CHATROOM_SRC] = help_text
    help_text = _serve_help[CHATROOM_SRC]
    extra = UNLIMITED_IF_SUPPORTED if UNLIMITED_IF_SUPPORTED[0] in help_text else []
    return UNLIMITED + extra


def _launch(cmd: list[str], cpus: list[int] | None, log_path: Path, cwd: Path) -> tuple:
    launcher = [sys.executable, "-m", "benchmarks.launch"]
    if cpus:
        launcher += ["--cpus", ",".join(map(str, cpus))]
    log = open(log_path, "wb")  # noqa: SIM115 - closed by Server.stop
    env = _env()
    process = subprocess.Popen(
        [*launcher, "--", *cmd],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    return process, log


async def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.kind} exited at start:\n{server.log_tail()}")
        with contextlib.suppress(OSError, asyncio.TimeoutError, ValueError, IndexError):
            status, _ = await http_json(server.port, "GET", "/healthz", timeout=2)
            if status == 200:
                return
        await asyncio.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.kind} not ready in {timeout:.0f}s:\n{server.log_tail()}")


async def start_chatroom(
    data_dir: Path, processes: int = 1, cpus: list[int] | None = None, extra_args=()
) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "chatroom", "serve", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port), "--processes", str(processes), *serve_options(), *extra_args]
    cmd += [*CHATROOM_ARGS, *(["--archiver", "off"] if ARCHIVE_PROCESS else [])]
    log_path = data_dir.parent / f"{data_dir.name}.log"
    process, log = _launch(cmd, cpus, log_path, data_dir.parent)
    server = Server("chatroom", port, process, data_dir, log_path, log, processes)
    await wait_ready(server)
    if cpus:
        unpin_archiver(server)
    if ARCHIVE_PROCESS:
        archive = [sys.executable, "-m", "chatroom", "archive", "--data-dir", str(data_dir)]
        archive_log = data_dir.parent / f"{data_dir.name}-archive.log"
        process, log = _launch(archive, None, archive_log, data_dir.parent)
        server.extra["archiver"] = Server("archiver", 0, process, data_dir, archive_log, log)
    return server


def unpin_archiver(server: Server) -> None:
    """Let serve's archiver child (``--archiver process``, the default) run on any CPU.

    It inherits serve's pinning; deployed, nothing pins it, so on two cores it runs
    beside serve rather than on serve's core. Its CPU still counts in the server's
    figures: the Sampler sums the whole process tree.
    """
    try:
        import psutil
    except ImportError:
        return
    with contextlib.suppress(psutil.Error, OSError):
        for child in psutil.Process(server.pid).children(recursive=True):
            if is_archiver(child):
                os.sched_setaffinity(child.pid, range(os.cpu_count() or 1))


def is_archiver(proc) -> bool:
    """Whether a ``psutil.Process`` of serve's tree is its archiver child (``python -m
    chatroom archive``); False for a process that has just exited."""
    import psutil  # only called with a psutil.Process

    try:
        return "archive" in proc.cmdline()
    except psutil.Error:  # gone, a zombie
        return False


#: The baselines: kind -> (module, the protocol the generator speaks to it).
BASELINES = {
    "baseline": ("benchmarks.baseline_server", "chatroom"),
    "socketio": ("benchmarks.socketio_server", "socketio"),
}


async def start_baseline(
    workdir: Path, cpus: list[int] | None = None, kind: str = "baseline"
) -> Server:
    """A baseline server: ``baseline`` (bare Tornado) or ``socketio`` (python-socketio)."""
    module, protocol = BASELINES[kind]
    port = free_port()
    cmd = [sys.executable, "-m", module, "--port", str(port)]
    log_path = workdir / f"{kind}-{port}.log"
    process, log = _launch(cmd, cpus, log_path, ROOT)
    server = Server(kind, port, process, workdir, log_path, log, protocol=protocol)
    await wait_ready(server)
    return server


async def start_relay(
    workdir: Path, processes: int = 1, cpus: list[int] | None = None, extra_args=()
) -> Server:
    """The relay (``benchmarks/relay_server.py``): the least a Tornado + Redis server with
    ``processes`` workers does for the generator; the cost scenario's floor. ``extra_args``:
    ``--redis-url`` and ``--redis-prefix``, as chatroom's."""
    port = free_port()
    cmd = [sys.executable, "-m", "benchmarks.relay_server", "--port", str(port)]
    cmd += ["--processes", str(processes), *extra_args]
    log_path = workdir / f"relay-{port}.log"
    process, log = _launch(cmd, cpus, log_path, ROOT)
    server = Server("relay", port, process, workdir, log_path, log, processes)
    await wait_ready(server)
    return server


# -- accounts ---------------------------------------------------------------------


def user_name(i: int) -> str:
    return f"bench{i:05d}"


async def make_accounts(
    port: int, users: int, rooms: int, concurrency: int = 8, seconds: list | None = None
) -> dict:
    """Register and log in ``users`` users, create rooms ``bench-0..``; the tokens.

    ``seconds``, when given, gets how long each register and each login took."""
    gate = asyncio.Semaphore(concurrency)
    tokens: list[str | None] = [None] * users

    async def timed(path: str, creds: dict) -> tuple:
        started = time.monotonic()
        out = await http_json(port, "POST", path, creds, timeout=120)
        if seconds is not None:
            seconds.append(time.monotonic() - started)
        return out

    async def one(i: int) -> None:
        creds = {"username": user_name(i), "password": PASSWORD}
        async with gate:
            status, body = await timed("/api/register", creds)
            if status not in (201, 409):
                raise RuntimeError(f"register {creds['username']}: {status} {body}")
            status, body = await timed("/api/login", creds)
            if status != 200:
                raise RuntimeError(f"login {creds['username']}: {status} {body}")
            tokens[i] = body["token"]

    await asyncio.gather(*(one(i) for i in range(users)))
    for r in range(rooms):  # by turns: one user may create only so many rooms an hour
        status, body = await http_json(
            port, "POST", "/api/rooms", {"name": room_name(r)}, token=tokens[r % users]
        )
        if status not in (201, 409):
            raise RuntimeError(f"create room: {status} {body}")
    return {"users": [user_name(i) for i in range(users)], "tokens": tokens, "rooms": rooms}


def room_name(r: int) -> str:
    return f"bench-{r}"


class ChatroomFixture:
    """A template data directory with users, tokens and rooms, copied for every server.

    Registering and logging in cost a memory-hard hash each (~20 ms of CPU), so the
    accounts are made once per run, not once per scenario; every scenario then gets
    a fresh copy: empty rooms, no messages, the same sessions.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template"
        self.accounts: dict = {"users": [], "tokens": [], "rooms": 0}
        self._copies = 0

    async def ensure(self, users: int, rooms: int, log=print) -> dict:
        if len(self.accounts["users"]) >= users and self.accounts["rooms"] >= rooms:
            return self.accounts
        users = max(users, len(self.accounts["users"]))
        rooms = max(rooms, self.accounts["rooms"])
        started = time.monotonic()
        server = await start_chatroom(self.template)
        try:
            self.accounts = await make_accounts(server.port, users, rooms)
        finally:
            server.stop()
        (self.template / "bench-accounts.json").write_text(json.dumps(self.accounts))
        log(f"  accounts: {users} users, {rooms} rooms ready in {time.monotonic() - started:.1f}s")
        return self.accounts

    def fresh_copy(self) -> Path:
        self._copies += 1
        dest = self.root / f"d{self._copies}"
        shutil.copytree(
            self.template,
            dest,
            ignore=shutil.ignore_patterns("serve.lock", "redis.sock", "redis.pid", "*.log"),
        )
        return dest


class Workspace:
    """A temporary directory for one benchmark run, removed at the end."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="crb-"))

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# -- sampling -------------------------------------------------------------------


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine have used (None without psutil)."""
    if psutil is None:
        return None
    m = psutil.cpu_times()
    return m.user + m.nice + m.system + getattr(m, "irq", 0) + getattr(m, "softirq", 0)


def own_cpu_seconds() -> float:
    """CPU seconds of this process and all its descendants (servers, generator workers)."""
    if psutil is None:
        return 0.0
    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


async def wait_quiet(
    threshold_pct: float = 30.0, max_wait: float = 20.0, probe: float = 1.0
) -> tuple[float, float | None]:
    """Wait (bounded) until processes outside the benchmark use < ``threshold_pct`` of a CPU.

    The machine may be shared; a phase started during someone else's burst measures
    them. Returns (seconds waited, the last other-load % seen).
    """
    if psutil is None:
        return 0.0, None
    started = time.monotonic()
    load = None
    while True:
        busy0, ours0, t0 = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
        await asyncio.sleep(probe)
        wall = time.monotonic() - t0
        load = max(0.0, ((machine_busy_seconds() - busy0) - (own_cpu_seconds() - ours0)) / wall)
        load = round(load * 100.0, 1)
        waited = time.monotonic() - started
        if load < threshold_pct or waited >= max_wait:
            return waited, load


class Sampler:
    """Samples CPU time and RSS of the server's process tree every ``interval``.

    ``window(a, b)`` gives, between two ``time.monotonic()`` instants, the server's
    CPU% (100 = one core; Python processes and the rest, i.e. the embedded
    redis-server, also apart) and peak RSS, and ``other_load_pct``: the CPU that
    processes *outside* this benchmark used on the machine (from the machine-wide
    counters), which tells a figure disturbed by a noisy neighbour.
    """

    def __init__(self, root_pid: int, interval: float = 0.25) -> None:
        self.root_pid = root_pid
        self.interval = interval
        # (t, server cpu, server python cpu, server rss, server python rss, our cpu, machine busy)
        self.samples: list[tuple] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, object] = {}

    @property
    def available(self) -> bool:
        return psutil is not None

    def _tree(self, pid: int) -> list:
        try:
            root = self._procs.get(pid) or psutil.Process(pid)
            self._procs[pid] = root
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        return [self._procs.setdefault(p.pid, p) for p in procs]

    def sample(self) -> tuple | None:
        if psutil is None:
            return None
        with self._lock:
            server = {p.pid for p in self._tree(self.root_pid)}
            cpu_all = cpu_py = ours = 0.0
            rss_all = rss_py = 0
            for p in self._tree(os.getpid()):
                try:
                    with p.oneshot():
                        t = p.cpu_times()
                        cpu = t.user + t.system
                        ours += cpu
                        if p.pid not in server:
                            continue
                        rss = p.memory_info().rss
                        is_python = "python" in p.name().lower()
                except psutil.Error:
                    continue
                cpu_all += cpu
                rss_all += rss
                if is_python:
                    cpu_py += cpu
                    rss_py += rss
            row = (time.monotonic(), cpu_all, cpu_py, rss_all, rss_py, ours, machine_busy_seconds())
            self.samples.append(row)
            return row

    def start(self) -> Sampler:
        if psutil is None:
            return self
        self.sample()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def window(self, start: float, end: float) -> dict:
        if psutil is None:
            return {}
        self.sample()
        rows = [r for r in self.samples if start <= r[0] <= end]
        before = [r for r in self.samples if r[0] <= start]
        first = before[-1] if before else (rows[0] if rows else None)
        last = rows[-1] if rows else None
        if first is None or last is None or last[0] - first[0] <= 0:
            return {}
        wall = last[0] - first[0]

        def pct(i: int) -> float:
            return round((last[i] - first[i]) / wall * 100.0, 1)

        return {
            "cpu_pct": pct(1),
            "cpu_python_pct": pct(2),
            "rss_peak_mib": round(max(r[3] for r in rows) / 2**20, 1),
            "rss_python_peak_mib": round(max(r[4] for r in rows) / 2**20, 1),
            "other_load_pct": max(0.0, round(pct(6) - pct(5), 1)),
        }

    def rss_now(self) -> tuple[int, int]:
        row = self.sample()
        return (row[3], row[4]) if row else (0, 0)

    def pss_now(self) -> tuple[int, int]:
        """(PSS of the server's process tree, its processes): what the tree costs the
        machine, each page shared by k processes counted 1/k in each. RSS counts it in
        every process, so a tree of two interpreters (serve and its archiver child)
        shows their shared libraries twice. Reads /proc/PID/smaps_rollup: for one-off
        readings, not the sampling loop."""
        if psutil is None:
            return 0, 0
        with self._lock:
            total = count = 0
            for p in self._tree(self.root_pid):
                with contextlib.suppress(psutil.Error, AttributeError):
                    total += p.memory_full_info().pss
                    count += 1
            return total, count
