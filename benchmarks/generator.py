"""The load generator: clients that speak chatroom's protocol and measure what they see.

A ``Worker`` owns a slice of the clients inside one process and one event loop.
``LoadGenerator`` drives one or more workers: in its own process (``procs=1``) or
in spawned processes (``procs>1``), all through the same command interface, so the
figures are the same either way.

Every ``message`` frame carries its send time (``time.monotonic()``, which is one
clock for every process on the host) at the start of its text; receivers take
the time when the bytes arrive, before parsing, and keep:

* latency (send → receipt) in a histogram;
* per room, ids must be consecutive: a jump leaves holes; an id that fills a hole
  is ``out_of_order``, an id already seen is a ``duplicate``, and what is still a
  hole (or past the client's last id) after the drain is ``lost``.

Senders fire on a fixed schedule; how late each send fires vs its schedule is the
generator's ``send lag`` — with the generator's CPU% it tells when a figure is
the generator's own limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass

import orjson

from benchmarks.sioclient import CLIENTS
from benchmarks.wsclient import HttpError, WebSocketClient

_MESSAGE = b'{"type":"message"'
_ACK = b'{"type":"ack"'
#: A client keeps at most this many holes; past that a jump counts as loss directly.
_MAX_HOLES = 100_000


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard one; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Histogram:
    """Latencies in seconds: 0.1 ms buckets below 100 ms, 1 ms buckets to 10 s, one overflow."""

    SIZE = 1000 + 9900 + 1

    __slots__ = ("counts", "max", "n", "total")

    def __init__(self) -> None:
        self.counts = [0] * self.SIZE
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        ms = seconds * 1000.0
        if ms < 100.0:
            i = int(ms * 10.0) if ms > 0 else 0
        elif ms < 10000.0:
            i = 1000 + int(ms - 100.0)
        else:
            i = self.SIZE - 1
        self.counts[i] += 1
        self.n += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (a bucket's upper edge), None when empty."""
        if not self.n:
            return None
        rank = max(1, round(p / 100.0 * self.n + 0.4999))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                if i < 1000:
                    edge = (i + 1) / 10.0
                elif i < self.SIZE - 1:
                    edge = 100.0 + (i - 1000 + 1)
                else:
                    edge = self.max * 1000.0
                return round(min(edge, self.max * 1000.0), 3)
        return round(self.max * 1000.0, 3)

    def summary(self) -> dict:
        return {
            "n": self.n,
            "mean_ms": round(self.total / self.n * 1000.0, 3) if self.n else None,
            "p50_ms": self.percentile(50),
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "p999_ms": self.percentile(99.9),
            "max_ms": round(self.max * 1000.0, 3) if self.n else None,
        }

    def to_wire(self) -> dict:
        return {
            "c": {i: c for i, c in enumerate(self.counts) if c},
            "n": self.n,
            "t": self.total,
            "m": self.max,
        }

    @classmethod
    def from_wire(cls, data: dict) -> Histogram:
        h = cls()
        for i, c in data["c"].items():
            h.counts[int(i)] = c
        h.n, h.total, h.max = data["n"], data["t"], data["m"]
        return h


@dataclass
class ClientSpec:
    index: int
    user: str
    token: str
    room: str
    sender: bool
    #: Rooms the socket joins besides ``room`` (the ``scale`` scenario); it sends in ``room``.
    extra_rooms: tuple[str, ...] = ()


class RoomSeen:
    """What a client has seen of one room, and the order checks: ids must be consecutive.

    A ``Client`` is the ``RoomSeen`` of its own room; it keeps one more per extra room.
    """

    __slots__ = ("holes", "last")

    def __init__(self) -> None:
        self.last = 0  # the highest message id seen in the room
        self.holes: set[int] = set()

    def see(self, mid: int, worker: Worker) -> bool:
        """Record message ``mid``; False for a duplicate (not delivered again)."""
        last = self.last
        if mid == last + 1:
            self.last = mid
        elif mid > last:
            if mid - last - 1 <= _MAX_HOLES - len(self.holes):
                self.holes.update(range(last + 1, mid))
            else:
                worker.lost_overflow += mid - last - 1
            self.last = mid
        elif mid in self.holes:
            self.holes.discard(mid)
            worker.out_of_order += 1
        else:
            worker.duplicates += 1
            return False
        return True

    def behind(self, expected: int) -> int:
        """How many messages up to ``expected`` are missing."""
        return len(self.holes) + max(0, expected - self.last)

    def write_off(self, expected: int) -> int:
        """Count what is missing up to ``expected`` as lost and set it seen; how many."""
        lost = self.behind(expected)
        self.holes.clear()
        self.last = max(self.last, expected)
        return lost


class Client(RoomSeen):
    """One simulated user connection in one room (whose ids it checks as a ``RoomSeen``)."""

    __slots__ = (
        "caught_at",
        "caught_up",
        "extra",
        "hello",
        "joined",
        "joins_left",
        "pending",
        "seq",
        "spec",
        "start_at",
        "target",
        "worker",
        "ws",
    )

    def __init__(self, spec: ClientSpec, worker: Worker) -> None:
        super().__init__()
        self.spec = spec
        self.worker = worker
        self.ws: WebSocketClient | None = None
        self.hello: asyncio.Future | None = None
        self.joined: asyncio.Future | None = None
        self.seq = 0
        self.pending: dict[str, float] = {}
        self.caught_up: asyncio.Future | None = None
        self.target = 0
        self.start_at = 0.0
        self.caught_at = 0.0
        self.extra = {room: RoomSeen() for room in spec.extra_rooms}
        self.joins_left = 0

    # The hot path: every frame the server sends this client.
    def on_frame(self, payload: bytes, now: float) -> None:
        w = self.worker
        if payload.startswith(_MESSAGE):
            msg = orjson.loads(payload)
            room = msg["room"]
            seen = self if room == self.spec.room else self.extra.get(room)
            if seen is None:
                w.other_frames["message from a room not joined"] += 1
            elif seen.see(msg["id"], w):  # False: a duplicate, not delivered again
                w.delivered += 1
                text = msg["text"]
                w.latency.add(now - float(text[: text.index(" ")]))
                if self.caught_up is not None and not self.behind(self.target):
                    self._caught_up(now)
            return
        if payload.startswith(_ACK):
            msg = orjson.loads(payload)
            sent = self.pending.pop(msg.get("client_id"), None)
            if sent is not None:
                w.acked += 1
                w.ack_latency.add(now - sent)
            room_max = w.max_acked
            if msg["id"] > room_max.get(msg["room"], 0):
                room_max[msg["room"]] = msg["id"]
            return
        msg = orjson.loads(payload)
        kind = msg.get("type")
        if kind == "hello":
            if self.hello is not None and not self.hello.done():
                self.hello.set_result(now)
        elif kind == "joined":
            self._on_joined(msg, now)
        elif kind == "error":
            w.errors[msg.get("code", "?")] += 1
            self.pending.pop(msg.get("client_id"), None)
            if self.joined is not None and not self.joined.done():
                self.joined.set_exception(RuntimeError(f"join refused: {msg}"))
        else:
            w.other_frames[str(kind)] += 1

    def _on_joined(self, msg: dict, now: float) -> None:
        w = self.worker
        items = msg.get("messages") or []
        self.joins_left -= 1
        extra = self.extra.get(msg.get("room")) if msg.get("room") != self.spec.room else None
        if extra is not None:
            if items:
                extra.last = max(extra.last, items[-1]["id"])
            if self.joins_left <= 0 and self.joined is not None and not self.joined.done():
                self.joined.set_result(now)
            return
        if self.caught_up is not None:  # a reconnect with ``since``: verify what came back
            expect = self.last + 1
            for item in items:
                mid = item["id"]
                if mid == expect:
                    expect += 1
                elif mid < expect:
                    w.duplicates += 1
                else:
                    w.out_of_order += 1
                    expect = mid + 1
            w.replayed += len(items)
            if items:
                self.last = max(self.last, items[-1]["id"])
            w.gaps_reported += int(msg.get("missing") or 0)
        elif items:
            self.last = max(self.last, items[-1]["id"])
        if self.joins_left <= 0 and self.joined is not None and not self.joined.done():
            self.joined.set_result(now)
        if self.caught_up is not None and not self.behind(self.target):
            self._caught_up(now)

    def _caught_up(self, now: float) -> None:
        if not self.caught_up.done():
            self.caught_at = now
            self.caught_up.set_result(now)

    async def connect(self, port: int) -> float:
        """Open the socket and wait for ``hello``; seconds it took."""
        loop = asyncio.get_running_loop()
        self.hello = loop.create_future()
        start = time.monotonic()
        self.ws = await self.worker.client_class.connect(port, self.spec.token, self.on_frame)
        await asyncio.wait_for(self.hello, 30)
        return time.monotonic() - start

    async def join(self, since: int | None = None) -> float:
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        start = time.monotonic()
        frame: dict = {"type": "join", "room": self.spec.room}
        if since is not None:
            frame["since"] = since
        self.joins_left = 1 + len(self.extra)
        self.ws.send(frame)
        for room in self.extra:
            self.ws.send({"type": "join", "room": room})
        await asyncio.wait_for(self.joined, 30)
        return time.monotonic() - start


class Worker:
    """A slice of the clients, in one process; every method is a command of the protocol."""

    def __init__(self, port: int, specs: list[ClientSpec], protocol: str = "chatroom") -> None:
        self.port = port
        self.client_class = CLIENTS[protocol]
        self.clients = [Client(spec, self) for spec in specs]
        self.senders = [c for c in self.clients if c.spec.sender]
        self._send_tasks: list[asyncio.Task] = []
        self._reset()

    def _reset(self) -> None:
        self.latency = Histogram()
        self.ack_latency = Histogram()
        self.lag = Histogram()
        self.delivered = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.lost_overflow = 0
        self.sent = 0
        self.acked = 0
        self.replayed = 0
        self.gaps_reported = 0
        self.errors: Counter = Counter()
        self.other_frames: Counter = Counter()
        self.max_acked: dict[str, int] = {}
        self.cpu0 = cpu_seconds()
        self.t0 = time.monotonic()

    async def handle(self, cmd: str, kwargs: dict) -> object:
        return await getattr(self, "cmd_" + cmd)(**kwargs)

    # -- setup ---------------------------------------------------------------

    async def cmd_connect(self, concurrency: int = 100, which: str = "all") -> dict:
        """Connect clients (bounded concurrency); connect times and failures."""
        gate = asyncio.Semaphore(concurrency)
        hist, failures = Histogram(), Counter()

        async def one(c: Client) -> None:
            async with gate:
                try:
                    hist.add(await c.connect(self.port))
                except (OSError, asyncio.TimeoutError, HttpError, ConnectionError) as exc:
                    failures[
                        type(exc).__name__
                        + (f" {exc.status}" if isinstance(exc, HttpError) else "")
                    ] += 1

        await asyncio.gather(*(one(c) for c in self._select(which)))
        return {"connect": hist.to_wire(), "failures": dict(failures)}

    async def cmd_join(self, concurrency: int = 100, which: str = "all") -> dict:
        gate = asyncio.Semaphore(concurrency)
        hist, failures = Histogram(), Counter()

        async def one(c: Client) -> None:
            async with gate:
                try:
                    hist.add(await c.join())
                except (asyncio.TimeoutError, RuntimeError, AttributeError) as exc:
                    failures[type(exc).__name__] += 1

        await asyncio.gather(*(one(c) for c in self._select(which) if c.ws is not None))
        return {"join": hist.to_wire(), "failures": dict(failures)}

    def _select(self, which: str) -> list[Client]:
        if which == "unconnected":
            return [c for c in self.clients if c.ws is None]
        if which == "senders":
            return self.senders
        if which == "receivers":
            return [c for c in self.clients if not c.spec.sender]
        return self.clients

    async def cmd_open_count(self) -> int:
        return sum(1 for c in self.clients if c.ws is not None and c.ws.is_open)

    # -- placement (the ``cost`` scenario: which server process holds which socket) --

    async def cmd_local_ports(self) -> dict[int, int]:
        """The local TCP port of every open socket, by client index: the server process
        that accepted it is found from its peer port."""
        return {
            c.spec.index: c.ws.transport.get_extra_info("sockname")[1]
            for c in self.clients
            if c.ws is not None and c.ws.is_open
        }

    async def cmd_release(self, indices: list[int]) -> None:
        """Close these clients' sockets (not yet joined); ``connect(which="unconnected")``
        opens them again, maybe on another server process."""
        wanted = set(indices)
        clients = [c for c in self.clients if c.spec.index in wanted and c.ws is not None]
        await asyncio.gather(*(c.ws.close(timeout=2) for c in clients))
        for c in clients:
            c.ws = None

    async def cmd_assign(self, plan: dict[int, tuple[str, bool]]) -> int:
        """Give each client of ``plan`` (index -> (room, sender)) its room before ``join``;
        close and forget every other client. How many this worker keeps."""
        keep = [c for c in self.clients if c.spec.index in plan]
        drop = [c for c in self.clients if c.spec.index not in plan and c.ws is not None]
        await asyncio.gather(*(c.ws.close(timeout=2) for c in drop))
        for c in keep:
            room, sender = plan[c.spec.index]
            c.spec = dataclasses.replace(c.spec, room=room, sender=sender)
        self.clients = keep
        self.senders = [c for c in keep if c.spec.sender]
        return len(keep)

    # -- sending -------------------------------------------------------------

    async def cmd_reset(self) -> None:
        self._reset()

    async def cmd_start_sending(self, rate: float, t0: float, duration: float, size: int) -> None:
        """Start every sender: ``rate`` sends/s each, from monotonic ``t0`` for ``duration``."""
        self._send_tasks = [
            asyncio.create_task(self._send_loop(c, rate, t0, t0 + duration, size))
            for c in self.senders
        ]

    async def _send_loop(self, c: Client, rate: float, t0: float, t_end: float, size: int) -> None:
        interval = 1.0 / rate
        due = t0 + ((c.spec.index * 0.6180339887) % 1.0) * interval  # spread the senders
        room = orjson.dumps(c.spec.room)
        prefix = b'{"type":"send","room":' + room + b',"text":"'
        lag = self.lag
        ws = c.ws
        sleep, monotonic = asyncio.sleep, time.monotonic
        while due < t_end:
            now = monotonic()
            if due > now:
                await sleep(due - now)
                now = monotonic()
            lag.add(now - due)
            c.seq += 1
            cid = f"{c.spec.index}-{c.seq}"
            text = f"{now:.6f} {cid} "
            text = text + "x" * (size - len(text))
            ws.send_raw(b'%b%b","client_id":"%b"}' % (prefix, text.encode(), cid.encode()))
            c.pending[cid] = now
            self.sent += 1
            due += interval
            if not ws.is_open:
                return

    async def cmd_wait_sending(self, timeout: float) -> None:
        if self._send_tasks:
            await asyncio.wait(self._send_tasks, timeout=timeout)
            for task in self._send_tasks:
                task.cancel()
            self._send_tasks = []

    async def cmd_wait_acks(self, timeout: float) -> dict:
        """Wait (bounded) for the acks of every send; then the highest ids per room."""
        deadline = time.monotonic() + timeout
        while any(c.pending for c in self.senders) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        seen: dict[str, int] = {}
        for c in self.clients:
            seen[c.spec.room] = max(seen.get(c.spec.room, 0), c.last)
            for room, extra in c.extra.items():
                seen[room] = max(seen.get(room, 0), extra.last)
        return {"max_acked": self.max_acked, "max_seen": seen}

    async def cmd_drain(self, expected: dict[str, int], timeout: float) -> dict:
        """Wait until every connected client saw its room's ``expected`` id; count the rest lost.

        Holes and shortfalls are then written off (set as seen), so a later phase
        counts only its own losses; a late arrival afterwards shows as a duplicate.
        """
        deadline = time.monotonic() + timeout
        live = [c for c in self.clients if c.ws is not None and c.ws.is_open]

        def short(c: Client) -> bool:
            if c.behind(expected.get(c.spec.room, 0)):
                return True
            return any(x.behind(expected.get(r, 0)) for r, x in c.extra.items())

        def behind() -> list[Client]:
            return [c for c in live if short(c)]

        while behind() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        lost = self.lost_overflow
        clients_short = 0
        for c in behind():
            clients_short += 1
            lost += c.write_off(expected.get(c.spec.room, 0))
            for room, extra in c.extra.items():
                lost += extra.write_off(expected.get(room, 0))
        unacked = sum(len(c.pending) for c in self.senders)
        for c in self.senders:
            c.pending.clear()
        closed = len(self.clients) - len(live)
        return {"lost": lost, "clients_short": clients_short, "unacked": unacked, "closed": closed}

    async def cmd_progress(self) -> dict:
        return {
            "sent": self.sent,
            "acked": self.acked,
            "delivered": self.delivered,
            "p99_ms": self.latency.percentile(99),
            "lag_p99_ms": self.lag.percentile(99),
            "cpu_s": cpu_seconds() - self.cpu0,
            "errors": sum(self.errors.values()),
        }

    async def cmd_stats(self) -> dict:
        return {
            "wall_s": time.monotonic() - self.t0,
            "cpu_s": cpu_seconds() - self.cpu0,
            "sent": self.sent,
            "acked": self.acked,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "replayed": self.replayed,
            "gaps_reported": self.gaps_reported,
            "errors": dict(self.errors),
            "other_frames": dict(self.other_frames),
            "latency": self.latency.to_wire(),
            "ack_latency": self.ack_latency.to_wire(),
            "lag": self.lag.to_wire(),
        }

    # -- offline catch-up -----------------------------------------------------

    async def cmd_disconnect(self, which: str = "receivers") -> int:
        clients = [c for c in self._select(which) if c.ws is not None]
        await asyncio.gather(*(c.ws.close() for c in clients))
        for c in clients:
            c.ws = None
        return len(clients)

    async def cmd_reconnect(self, expected: dict[str, int], t0: float, timeout: float) -> dict:
        """At monotonic ``t0``, reconnect every closed client at once and join with ``since``.

        A client has caught up when it holds every id up to its room's ``expected``.
        """
        clients = [c for c in self.clients if c.ws is None]
        loop = asyncio.get_running_loop()
        missed = 0
        for c in clients:
            c.caught_up = loop.create_future()
            c.target = expected.get(c.spec.room, 0)
            missed += max(0, c.target - c.last)
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        failures: Counter = Counter()
        hist = Histogram()

        async def one(c: Client) -> None:
            try:
                await c.connect(self.port)
                await c.join(since=c.last)
                await asyncio.wait_for(c.caught_up, max(0.1, t0 + timeout - time.monotonic()))
                hist.add(c.caught_at - t0)
            except (OSError, asyncio.TimeoutError, HttpError, ConnectionError, RuntimeError) as exc:
                failures[type(exc).__name__] += 1

        await asyncio.gather(*(one(c) for c in clients))
        last_caught = max((c.caught_at for c in clients if c.caught_up.done()), default=t0)
        for c in clients:
            c.caught_up = None
        return {
            "clients": len(clients),
            "missed": missed,
            "caught_up": hist.to_wire(),
            "last_caught_up_s": last_caught - t0,
            "failures": dict(failures),
        }

    async def cmd_close(self) -> None:
        await self.cmd_wait_sending(0)
        clients = [c for c in self.clients if c.ws is not None]
        await asyncio.gather(*(c.ws.close(timeout=2) for c in clients))


# -- running workers in this process or in others --------------------------------


class LocalWorker:
    def __init__(self, port: int, specs: list[ClientSpec], protocol: str = "chatroom") -> None:
        self.worker = Worker(port, specs, protocol)
        self.pid = os.getpid()

    async def call(self, cmd: str, **kwargs: object) -> object:
        return await self.worker.handle(cmd, kwargs)

    async def stop(self) -> None:
        return None


def _child_main(
    conn, port: int, specs: list[ClientSpec], cpus: list[int] | None, protocol: str
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_nofile_limit()

    async def serve() -> None:
        worker = Worker(port, specs, protocol)
        loop = asyncio.get_running_loop()
        while True:
            cmd, kwargs = await loop.run_in_executor(None, conn.recv)
            if cmd == "exit":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", await worker.handle(cmd, kwargs)))
            except Exception as exc:  # report, keep serving
                conn.send(("error", repr(exc)))

    asyncio.run(serve())


class RemoteWorker:
    """A worker in a spawned process; commands go over a pipe, one at a time."""

    def __init__(
        self, port: int, specs: list[ClientSpec], cpus: list[int] | None, protocol: str
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        args = (child, port, specs, cpus, protocol)
        self.process = ctx.Process(target=_child_main, args=args, daemon=True)
        self.process.start()
        child.close()
        self.pid = self.process.pid
        self._lock = asyncio.Lock()

    async def call(self, cmd: str, **kwargs: object) -> object:
        loop = asyncio.get_running_loop()
        async with self._lock:
            self.conn.send((cmd, kwargs))
            status, value = await loop.run_in_executor(None, self.conn.recv)
        if status != "ok":
            raise RuntimeError(f"generator worker failed on {cmd}: {value}")
        return value

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("exit"), 10)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def merge_hist(parts: list[dict]) -> Histogram:
    total = Histogram()
    for part in parts:
        total.merge(Histogram.from_wire(part))
    return total


class LoadGenerator:
    """All the workers of one run, driven as one; ``protocol`` is ``"chatroom"`` (chatroom
    and the baseline) or ``"socketio"`` (``benchmarks/socketio_server.py``)."""

    def __init__(
        self,
        port: int,
        specs: list[ClientSpec],
        procs: int = 1,
        cpus=None,
        protocol: str = "chatroom",
    ) -> None:
        self.port = port
        self.specs = specs
        self.procs = max(1, procs)
        self.cpus = cpus
        self.protocol = protocol
        self.workers: list = []

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    async def start(self) -> None:
        if self.procs == 1:
            self.workers = [LocalWorker(self.port, self.specs, self.protocol)]
        else:
            self.workers = [
                RemoteWorker(self.port, self.specs[i :: self.procs], self.cpus, self.protocol)
                for i in range(self.procs)
            ]

    async def all(self, cmd: str, **kwargs: object) -> list:
        return list(await asyncio.gather(*(w.call(cmd, **kwargs) for w in self.workers)))

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.all("close"), 15)
        for w in self.workers:
            await w.stop()

    async def connect(self, concurrency: int = 100, which: str = "all") -> dict:
        parts = await self.all("connect", concurrency=concurrency, which=which)
        failures: Counter = Counter()
        for p in parts:
            failures.update(p["failures"])
        return {"hist": merge_hist([p["connect"] for p in parts]), "failures": dict(failures)}

    async def join(self, concurrency: int = 100, which: str = "all") -> dict:
        parts = await self.all("join", concurrency=concurrency, which=which)
        failures: Counter = Counter()
        for p in parts:
            failures.update(p["failures"])
        return {"hist": merge_hist([p["join"] for p in parts]), "failures": dict(failures)}

    async def open_count(self) -> int:
        return sum(await self.all("open_count"))

    async def local_ports(self) -> dict[int, int]:
        """Client index -> local port of its open socket, over every worker."""
        out: dict[int, int] = {}
        for part in await self.all("local_ports"):
            out.update(part)
        return out

    async def progress(self) -> dict:
        parts = await self.all("progress")
        out = {k: sum(p[k] for p in parts) for k in ("sent", "acked", "delivered", "errors")}
        out["cpu_s"] = sum(p["cpu_s"] for p in parts)
        p99s = [p["p99_ms"] for p in parts if p["p99_ms"] is not None]
        lags = [p["lag_p99_ms"] for p in parts if p["lag_p99_ms"] is not None]
        out["p99_ms"] = max(p99s) if p99s else None
        out["lag_p99_ms"] = max(lags) if lags else None
        return out

    async def send_phase(
        self,
        rate: float,
        duration: float,
        size: int = 64,
        drain_timeout: float = 10.0,
        on_tick=None,
    ) -> dict:
        """Reset, send for ``duration`` at ``rate`` per sender, drain; the merged statistics."""
        t_reset = time.monotonic()
        await self.all("reset")
        t0 = time.monotonic() + 0.2
        await self.all("start_sending", rate=rate, t0=t0, duration=duration, size=size)
        while True:
            now = time.monotonic()
            if now >= t0 + duration:
                break
            await asyncio.sleep(min(1.0, t0 + duration - now))
            if on_tick is not None:
                on_tick(time.monotonic() - t0, duration, await self.progress())
        await self.all("wait_sending", timeout=5.0)
        send_end = time.monotonic()
        # The generator's own CPU over the sending window (each worker since its reset).
        busy = [
            p["cpu_s"] / max(1e-9, send_end - t_reset) * 100.0 for p in await self.all("progress")
        ]
        acks = await self.all("wait_acks", timeout=drain_timeout)
        expected: dict[str, int] = {}
        for part in acks:
            for table in (part["max_acked"], part["max_seen"]):
                for room, mid in table.items():
                    expected[room] = max(expected.get(room, 0), mid)
        remaining = max(0.5, drain_timeout - (time.monotonic() - send_end))
        drains = await self.all("drain", expected=expected, timeout=remaining)
        drain_s = time.monotonic() - send_end
        stats = await self.all("stats")
        out = merge_stats(stats, drains, duration, drain_s)
        out["generator_cpu_pct"] = round(sum(busy), 1)
        out["generator_cpu_max_proc_pct"] = round(max(busy), 1)
        out["window"] = (t0, send_end)
        return out

    async def catch_up(self, expected: dict[str, int], timeout: float = 60.0) -> dict:
        t0 = time.monotonic() + 0.3
        parts = await self.all("reconnect", expected=expected, t0=t0, timeout=timeout)
        failures: Counter = Counter()
        for p in parts:
            failures.update(p["failures"])
        return {
            "clients": sum(p["clients"] for p in parts),
            "missed": sum(p["missed"] for p in parts),
            "hist": merge_hist([p["caught_up"] for p in parts]),
            "all_caught_up_s": max(p["last_caught_up_s"] for p in parts),
            "failures": dict(failures),
        }


def faults(stats: dict) -> int:
    """What a phase's merged stats got wrong: lost, duplicated, out of order, unacked,
    closed sockets and error frames. 0 is the only passing count in every scenario."""
    return (
        stats["lost"]
        + stats["duplicates"]
        + stats["out_of_order"]
        + stats["unacked"]
        + stats["closed"]
        + sum(stats["errors"].values())
    )


def merge_stats(stats: list[dict], drains: list[dict], duration: float, drain_s: float) -> dict:
    errors: Counter = Counter()
    other: Counter = Counter()
    for s in stats:
        errors.update(s["errors"])
        other.update(s["other_frames"])
    latency = merge_hist([s["latency"] for s in stats])
    ack = merge_hist([s["ack_latency"] for s in stats])
    lag = merge_hist([s["lag"] for s in stats])
    out = {
        "duration_s": duration,
        "drain_s": round(drain_s, 3),
        "sent": sum(s["sent"] for s in stats),
        "acked": sum(s["acked"] for s in stats),
        "delivered": sum(s["delivered"] for s in stats),
        "deliveries_per_s": round(sum(s["delivered"] for s in stats) / duration, 1),
        "sends_per_s": round(sum(s["sent"] for s in stats) / duration, 1),
        "lost": sum(d["lost"] for d in drains),
        "clients_short": sum(d["clients_short"] for d in drains),
        "unacked": sum(d["unacked"] for d in drains),
        "closed": sum(d["closed"] for d in drains),
        "duplicates": sum(s["duplicates"] for s in stats),
        "out_of_order": sum(s["out_of_order"] for s in stats),
        "errors": dict(errors),
        "other_frames": dict(other),
        "latency": latency.summary(),
        "ack_latency": ack.summary(),
        "send_lag": lag.summary(),
    }
    return out
