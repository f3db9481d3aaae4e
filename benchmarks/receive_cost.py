"""``python -m benchmarks.receive_cost``: the CPU a serving process spends on each event
of a room it has no member in.

With one Redis (or Sentinel, or a Cluster's classic pub/sub) every process of
``chatroom serve`` receives every room's events on the one event channel, and
drops those of rooms without a local subscriber (issue 17 target 3: what more
processes cost per delivery). This measures that drop, end to end, in a real
``chatroom serve --processes 1 --redis-url`` with no socket at all:

1. the server starts against a ``redis-server`` this script starts, with a
   ``--redis-prefix`` of its own (``--archiver on`` by default);
2. it sits idle for ``--idle-seconds``: its CPU per second then (timers, the
   presence and archiver loops) is its baseline;
3. this script publishes ``--events`` chatroom-sized message envelopes on the
   server's event channel, paced at ``--rate`` per second over ``--rooms`` rooms
   (dense ids and revs, as the send script publishes them), waits a moment for
   the last to be read, and reads the server's CPU time (user + sys, every
   process of its tree, ``psutil``) again.

It prints the CPU µs per received event, gross (all of the load phase) and
marginal (less the idle baseline for the same length of time), for this tree
and for each ``--chatroom-src DIR`` (another tree's ``src/``, e.g. ``git archive
BASE src | tar -x -C /tmp/before``), interleaved ``--repeat`` times, median and
range. CPU time, not latency: it compares two versions on a busy machine.

Examples::

    python -m benchmarks.receive_cost
    python -m benchmarks.receive_cost --chatroom-src /tmp/before/src --repeat 3
    python -m benchmarks.receive_cost --rate 5000 --events 25000 --archiver off
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cost_redis import tree_cpu_seconds
from benchmarks.servers import free_port

ROOT = Path(__file__).resolve().parent.parent

#: A message as the send script publishes it: about the size of a chat line.
TEXT = "the quick brown fox jumps over the lazy dog, then sends a second line " * 2


def envelope(room: str, message_id: int, rev: int) -> bytes:
    """The event a stored message publishes (``models.events`` envelope, message frame)."""
    frame = (
        f'{{"type":"message","room":"{room}","id":{message_id},"user":"someone",'
        f'"ts":{time.time():.3f},"text":"{TEXT}","rev":{rev}}}'
    )
    return f"{room}\n{message_id}\n\n{frame}".encode()


class Serve:
    """``chatroom serve --processes 1`` of one tree, with no socket, on the given Redis."""

    def __init__(self, src: Path, redis_url: str, work: Path, archiver: str) -> None:
        self.prefix = f"rc{secrets.token_hex(4)}"
        self.port = free_port()
        data = work / self.prefix
        data.mkdir()
        env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
        command = [
            sys.executable, "-m", "chatroom", "serve", "--data-dir", str(data),
            "--port", str(self.port), "--processes", "1", "--redis-url", redis_url,
            "--redis-prefix", self.prefix, "--archiver", archiver,
        ]  # fmt: skip
        self.log = data / "serve.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"chatroom serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"chatroom serve not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def publish(redis_url: str, channel: str, events: int, rate: float, rooms: int) -> float:
    """Publish ``events`` envelopes at ``rate`` a second; the seconds it took."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    names = [f"room{n}" for n in range(rooms)]
    tick = 0.005
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    sent = 0
    try:
        while sent < events:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(min(per_tick, events - sent)):
                    room = names[sent % rooms]
                    message_id = sent // rooms + 1
                    pipe.publish(channel, envelope(room, message_id, message_id))
                    sent += 1
                await pipe.execute()
            ahead = started + sent / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await client.aclose()
    return time.perf_counter() - started


def measure(src: Path, redis_url: str, work: Path, args: argparse.Namespace) -> dict:
    """One tree's figures: idle CPU/s, gross and marginal CPU µs per received event."""
    serve = Serve(src, redis_url, work, args.archiver)
    try:
        serve.wait_ready()
        time.sleep(1.0)  # start-up work (migrations, the first passes) out of the way
        pid = serve.process.pid
        cpu0, wall0 = sum(tree_cpu_seconds(pid).values()), time.perf_counter()
        time.sleep(args.idle_seconds)
        cpu1, wall1 = sum(tree_cpu_seconds(pid).values()), time.perf_counter()
        idle_per_s = (cpu1 - cpu0) / (wall1 - wall0)
        asyncio.run(publish(redis_url, serve.channel, args.events, args.rate, args.rooms))
        time.sleep(0.3)  # the last events read
        cpu2, wall2 = sum(tree_cpu_seconds(pid).values()), time.perf_counter()
        if serve.process.poll() is not None:
            raise SystemExit(f"chatroom serve died:\n{serve.log.read_text()[-3000:]}")
    finally:
        serve.stop()
    used, wall = cpu2 - cpu1, wall2 - wall1
    return {
        "idle_cpu_per_s": idle_per_s,
        "gross_us": used / args.events * 1e6,
        "marginal_us": (used - idle_per_s * wall) / args.events * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument(
        "--archiver", choices=("on", "off", "process"), default="on",
        help="serve's --archiver (on: the serving process's own loop archives; a tree "
        "from before 'process' existed has only on and off)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chatroom-src", type=Path, action="append", default=[],
        help="another tree's src/ to measure too (repeatable); this tree's src/ always runs",
    )  # fmt: skip
    args = parser.parse_args()
    trees = [*(p.resolve() for p in args.chatroom_src), ROOT / "src"]
    work = Path(tempfile.mkdtemp(prefix="chatroom-receive-cost-"))
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    redis_url = f"redis://127.0.0.1:{port}/0"
    results: dict[Path, list[dict]] = {}
    try:
        time.sleep(0.5)
        for _ in range(args.repeat):
            for tree in trees:  # interleaved: drift on a busy machine hits each alike
                results.setdefault(tree, []).append(measure(tree, redis_url, work, args))
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"receive cost: {args.events:,} events of {args.rooms} rooms with no member here, "
        f"{args.rate:,.0f}/s, archiver {args.archiver}, median of {args.repeat} (min-max)"
    )
    print(f"{'tree':44} {'idle CPU %':>10} {'gross µs/event':>18} {'marginal µs/event':>20}")
    for tree, runs in results.items():
        cells = []
        for key in ("gross_us", "marginal_us"):
            values = sorted(r[key] for r in runs)
            cells.append(f"{statistics.median(values):.1f} ({values[0]:.0f}-{values[-1]:.0f})")
        idle = statistics.median(r["idle_cpu_per_s"] for r in runs) * 100
        print(f"{str(tree)[-44:]:44} {idle:10.1f} {cells[0]:>18} {cells[1]:>20}")


if __name__ == "__main__":
    main()
