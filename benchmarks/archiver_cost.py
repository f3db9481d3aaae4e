"""``python -m benchmarks.archiver_cost``: the archiver's CPU per archived message.

Fills rooms in a real Redis with N messages (default 20,000) the way sends do
(``MessageRepository.append``: client ids, mentions, replies, Chinese text),
changes some of them in place the way edits, reactions and deletes leave them,
then runs the archiver (``ArchiveController.archive_once``) until everything is
in a fresh SQL database, and prints what that cost the process that ran it:

- CPU µs per message, all threads (``time.process_time``): the SQL threads'
  Python and the database driver (SQLite, with its FTS5 index, runs in-process)
  as well as the event loop's share;
- CPU µs per message on the event-loop thread alone (``time.thread_time``): what
  a serving process's sockets wait for directly;
- Redis CPU µs per message (``INFO cpu``, the Lua range reads and trims);
- messages per second (wall time; the machine's noise shows here first).

Each measurement runs in a child process, so that ``--chatroom-src DIR`` can
compare another tree (e.g. ``git archive HEAD src | tar -x -C /tmp/before``)
with this one, interleaved, ``--repeat`` times each; the medians are printed.
It does not run a load; it measures the copy loop alone, deterministically
enough to compare two versions on a busy machine (prefer the CPU columns).
``--per-pass K`` adds K messages to each room before each pass, as a steady
stream does (at a pass every 0.5 s, K = 100 is 200 messages/s per room), instead
of one pass over a backlog of all N: that includes what a pass costs whatever
the number of messages (its round trips, the lag measurement).

Examples::

    python -m benchmarks.archiver_cost --backend sqlite
    python -m benchmarks.archiver_cost --rooms 10 --per-pass 100
    python -m benchmarks.archiver_cost --chatroom-src /tmp/before/src --repeat 3 \\
        --backend both --postgresql-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# -- the child: one measurement with whatever ``chatroom`` is importable --------------


async def _fill(redis, keys, rooms: list[str], count: int, rng: random.Random) -> None:
    """``count`` messages over ``rooms``, as sends store them, then some of them edited,
    reacted to and deleted in place (the frames the archiver then reads)."""
    import orjson

    from benchmarks.archive import message_text
    from chatroom.models import MessageRepository

    messages = MessageRepository(redis, keys, 100)
    users = [f"user{n}" for n in range(50)]
    pending = []
    for n in range(count):
        room = rooms[n % len(rooms)]
        user = rng.choice(users)
        text = message_text(rng)
        extra: dict = {"client_id": f"c{secrets.token_hex(6)}"}
        if rng.random() < 0.10:
            named = rng.sample(users, 2)
            text = f"@{named[0]} @{named[1]} {text}"
            extra["mentions"] = named
            extra["mention_keys"] = [keys.mentions(room, u) for u in named]
        if rng.random() < 0.05 and n > len(rooms):
            extra["reply_to"] = {"id": rng.randint(1, n // len(rooms)), "user": "user1",
                                 "text": text[:40]}  # fmt: skip
        pending.append(messages.append(room, user, text, **extra))
        if len(pending) == 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    # Edits (3 %), reactions (5 %) and deletes (1 %), written as the change script
    # leaves them: the whole frame replaced in the log.
    for room in rooms:
        frames = await redis.lrange(keys.log(room), -(count // len(rooms)), -1)
        async with redis.pipeline(transaction=False) as pipe:
            for index, frame in enumerate(frames, -len(frames)):
                roll = rng.random()
                if roll >= 0.09:
                    continue
                item = orjson.loads(frame)
                if roll < 0.03:
                    item["text"] = item["text"] + " (edited)"
                    item["edited"] = item["ts"] + 30
                elif roll < 0.08:
                    item["reactions"] = {"👍": ["user1", "user2"], "🎉": ["user3"]}
                else:
                    item = {k: item[k] for k in ("type", "room", "id", "user", "ts")}
                    item.update(text="", deleted=True)
                item["rev"] = item.get("rev", 0) + 100_000
                pipe.lset(keys.log(room), index, orjson.dumps(item))
            await pipe.execute()


async def _measure(
    redis_url: str, database_url: str, count: int, rooms: int, seed: int, batch: int, per_pass: int
) -> dict:
    from chatroom.controllers import BlockingRunner
    from chatroom.controllers.archive import ArchiveController
    from chatroom.models import MessageRepository, RedisKeys, Room, migrate_schema, open_database
    from chatroom.models.archive import ArchivedMessage
    from chatroom.models.archive_state import ArchiveState
    from chatroom.storage import make_redis

    db = open_database(database_url)
    migrate_schema(db)
    names = [f"room{n}" for n in range(rooms)]
    for name in names:
        Room.ensure_public(name)
    redis = make_redis(redis_url)
    keys = RedisKeys(f"bench{secrets.token_hex(4)}")
    run = BlockingRunner(8)  # the serving process's default --db-threads
    messages = MessageRepository(redis, keys, 100)
    archive = ArchiveController(run, ArchiveState(redis, keys), messages, batch=batch)

    def redis_cpu(info: dict) -> float:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    # All at once (a backlog), or ``per_pass`` messages per room between passes (the
    # steady state: at 0.5 s a pass, 100 per room is 200 messages/s in each room).
    rng = random.Random(seed)
    step = per_pass * rooms if per_pass else count
    copied, wall, cpu, loop_cpu, redis_used = 0, 0.0, 0.0, 0.0, 0.0
    for start in range(0, count, step):
        await _fill(redis, keys, names, min(step, count - start), rng)
        redis_before = redis_cpu(await redis.info("cpu"))
        started = time.perf_counter(), time.process_time(), time.thread_time()
        copied += await archive.archive_once()
        loop_cpu += time.thread_time() - started[2]
        cpu += time.process_time() - started[1]
        wall += time.perf_counter() - started[0]
        redis_used += redis_cpu(await redis.info("cpu")) - redis_before
    stored = ArchivedMessage.select().count()
    await redis.aclose()
    run.shutdown()
    db.close()
    assert copied == count == stored, (copied, count, stored)
    return {
        "cpu_us": cpu / count * 1e6,
        "loop_cpu_us": loop_cpu / count * 1e6,
        "redis_cpu_us": redis_used / count * 1e6,
        "per_second": count / wall,
    }


def child(args: argparse.Namespace) -> None:
    figures = asyncio.run(
        _measure(
            args.redis_url,
            args.database_url,
            args.messages,
            args.rooms,
            args.seed,
            args.batch,
            args.per_pass,
        )
    )
    print(json.dumps(figures))


# -- the parent: databases, Redis, the interleaved runs, the medians ------------------


class Databases:
    """A fresh database per measurement: a new SQLite file or PostgreSQL database."""

    def __init__(self, work: Path, postgresql_url: str) -> None:
        self.work = work
        self.postgresql_url = postgresql_url
        self.created: list[str] = []

    def fresh(self, backend: str) -> str:
        name = f"chatroom_cost_{secrets.token_hex(4)}"
        if backend == "sqlite":
            return f"sqlite:///{self.work / (name + '.db')}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.postgresql_url.rsplit("/", 1)[0] + "/" + name

    def _admin(self, sql: str) -> None:
        from playhouse.db_url import connect

        admin = connect(self.postgresql_url)
        admin.connect()
        admin.connection().autocommit = True
        try:
            admin.execute_sql(sql)
        finally:
            admin.close()

    def drop_all(self) -> None:
        for name in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}"')


def run_child(src: Path, redis_url: str, database_url: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    command = [
        sys.executable, "-m", "benchmarks.archiver_cost", "--child",
        "--redis-url", redis_url, "--database-url", database_url,
        "--messages", str(args.messages), "--rooms", str(args.rooms), "--seed", str(args.seed),
        "--batch", str(args.batch), "--per-pass", str(args.per_pass),
    ]  # fmt: skip
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"the measurement with {src} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="messages per SQL transaction")
    parser.add_argument(
        "--per-pass", type=int, default=0,
        help="messages per room between archiver passes (0: all of them before one pass)",
    )  # fmt: skip
    parser.add_argument(
        "--chatroom-src", type=Path, action="append", default=[],
        help="another tree's src/ to measure too (repeatable); this tree's src/ always runs",
    )  # fmt: skip
    parser.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from chatroom.embedded_redis import EmbeddedRedis

    trees = [*(p.resolve() for p in args.chatroom_src), ROOT / "src"]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    work = Path(tempfile.mkdtemp(prefix="chatroom-archiver-cost-"))
    (work / "redis").mkdir()
    redis = EmbeddedRedis(work / "redis")
    redis.start()
    databases = Databases(work, args.postgresql_url)
    results: dict[tuple[str, Path], list[dict]] = {}
    try:
        for backend in backends:
            for _ in range(args.repeat):
                for tree in trees:  # interleaved: drift on a busy machine hits each alike
                    figures = run_child(tree, redis.url, databases.fresh(backend), args)
                    results.setdefault((backend, tree), []).append(figures)
    finally:
        redis.stop()
        databases.drop_all()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"archiver cost: {args.messages:,} messages over {args.rooms} rooms, "
        f"{args.per_pass or 'all'} per room a pass, batch {args.batch}, "
        f"median of {args.repeat} (min-max of process CPU)"
    )
    print(f"{'backend':10} {'tree':40} {'CPU µs/msg':>16} {'loop µs/msg':>12} "
          f"{'Redis µs/msg':>13} {'msg/s':>9}")  # fmt: skip
    for (backend, tree), runs in results.items():
        cpu = sorted(r["cpu_us"] for r in runs)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        spread = f"{med['cpu_us']:.1f} ({cpu[0]:.0f}-{cpu[-1]:.0f})"
        label = str(tree)[-40:]
        print(f"{backend:10} {label:40} {spread:>16} {med['loop_cpu_us']:12.1f} "
              f"{med['redis_cpu_us']:13.1f} {med['per_second']:9,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
