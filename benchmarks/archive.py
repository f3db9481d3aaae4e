"""``python -m benchmarks.archive``: the SQL archive's throughput and search latency.

Builds an archive of N messages (default 1,000,000) by bulk insert into a fresh
SQLite file and/or a fresh PostgreSQL database, then times ``models.search.search``
(the code behind ``GET /api/search``) for a common term, a rare term and a
two-character Chinese term, and the archiver copying messages from Redis to SQL.

Examples::

    python -m benchmarks.archive --backend sqlite --messages 1000000
    python -m benchmarks.archive --backend postgresql \\
        --postgresql-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import peewee
from playhouse.db_url import connect

from chatroom.controllers import BlockingRunner
from chatroom.controllers.archive import ArchiveController
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import MessageRepository, RedisKeys, Room, User, migrate_schema, open_database
from chatroom.models.archive import ArchivedMessage
from chatroom.models.archive_state import ArchiveState
from chatroom.models.search import SearchQuery, search
from chatroom.server import make_redis

_VOCABULARY = (
    "the a to and of we it is that for on this you be with have are not do at can will "
    "deploy build review ticket release branch server client test fix bug issue plan "
    "today tomorrow lunch coffee please thanks sure maybe later call doc design merge"
)
WORDS = tuple(_VOCABULARY.split())
CJK = "明天的改到下午三点我们讨论一下这个问题好的没有时间可以吗谢谢大家项目进度文档"
#: The terms timed: how often each occurs in the generated text is fixed below.
TERMS = {"common": "meeting", "rare": "zephyr", "cjk2": "会议", "cjk2rare": "龙猫"}


def message_text(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(3, 14))
    if rng.random() < 0.10:
        words.insert(rng.randrange(len(words) + 1), "meeting")
    if rng.random() < 0.0002:
        words.insert(rng.randrange(len(words) + 1), "zephyr")
    if rng.random() < 0.0002:
        words.append("龙猫")
    if rng.random() < 0.15:
        chunk = "".join(rng.choices(CJK, k=rng.randint(4, 16)))
        if rng.random() < 0.1:
            at = rng.randrange(len(chunk) + 1)
            chunk = chunk[:at] + "会议" + chunk[at:]
        words.append(chunk)
    return " ".join(words)


def build(db: peewee.Database, count: int, rooms: int = 50) -> float:
    """Bulk-insert ``count`` archived messages over ``rooms`` rooms; seconds taken."""
    rng = random.Random(7)
    room_ids = [Room.ensure_public(f"room{n}").id for n in range(rooms)]
    started = time.perf_counter()
    ts = time.time() - count
    next_id = dict.fromkeys(room_ids, 0)
    batch: list[dict] = []
    for n in range(count):
        room = room_ids[n % rooms]
        next_id[room] += 1
        user = f"user{rng.randrange(200)}"
        batch.append(
            {
                "room": room,
                "room_name": f"room{room_ids.index(room)}",
                "message_id": next_id[room],
                "user": user,
                "user_key": user,
                "text": message_text(rng),
                "ts": ts + n,
            }
        )
        if len(batch) == 5000:
            with db.atomic():
                ArchivedMessage.insert_many(batch).execute()
            batch.clear()
    if batch:
        with db.atomic():
            ArchivedMessage.insert_many(batch).execute()
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("ANALYZE archived_message")
    return time.perf_counter() - started


def time_searches(user_id: int, runs: int) -> dict[str, tuple[float, float, int]]:
    """Per term: p50 and p99 in ms, and how many results the first page had."""
    figures = {}
    for label, term in TERMS.items():
        query = SearchQuery((term,), user_id, limit=50)
        search(query)  # warm the cache
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            found = search(query)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        figures[label] = (statistics.median(samples), p99, len(found))
    return figures


async def archive_throughput(redis_url: str, count: int) -> float:
    """Messages per second the archiver copies from Redis to the bound database."""
    redis = make_redis(redis_url)
    run = BlockingRunner(2)
    keys = RedisKeys(f"bench{secrets.token_hex(4)}")
    messages = MessageRepository(redis, keys, 100)
    Room.ensure_public("throughput")
    for start in range(0, count, 1000):
        batch = range(start, min(count, start + 1000))
        await asyncio.gather(
            *(messages.append("throughput", "alice", f"message {n} meeting") for n in batch)
        )
    archive = ArchiveController(run, ArchiveState(redis, keys), messages)
    started = time.perf_counter()
    copied = await archive.archive_once()
    elapsed = time.perf_counter() - started
    await redis.aclose()
    run.shutdown()
    assert copied == count, copied
    return count / elapsed


def bench(backend: str, url: str, count: int, runs: int, redis_url: str) -> None:
    db = open_database(url)
    migrate_schema(db)
    built = build(db, count)
    user = User.create(name="bench", name_key="bench", password_hash="x")
    print(f"{backend}: built {count:,} archived messages in {built:.1f}s")
    for label, (p50, p99, found) in time_searches(user.id, runs).items():
        term = TERMS[label]
        print(f"{backend}: search {label:8} {term!r:10} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
              f"  ({found} results on the first page)")  # fmt: skip
    rate = asyncio.run(archive_throughput(redis_url, 20_000))
    print(f"{backend}: archiver throughput {rate:,.0f} messages/s (20,000 from Redis)")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100, help="searches timed per term")
    parser.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chatroom-archive-bench-"))
    (work / "redis").mkdir()
    redis = EmbeddedRedis(work / "redis")
    redis.start()
    try:
        if args.backend in ("sqlite", "both"):
            bench("sqlite", f"sqlite:///{work / 'archive.db'}", args.messages, args.runs, redis.url)
        if args.backend in ("postgresql", "both"):
            name = f"chatroom_bench_{secrets.token_hex(4)}"
            admin = connect(args.postgresql_url)
            admin.connect()
            admin.connection().autocommit = True
            admin.execute_sql(f'CREATE DATABASE "{name}"')
            try:
                url = args.postgresql_url.rsplit("/", 1)[0] + "/" + name
                bench("postgresql", url, args.messages, args.runs, redis.url)
            finally:
                admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
                admin.close()
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
