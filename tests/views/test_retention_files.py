"""Retention (SPEC §7) releases the files of the messages it deletes (SPEC §9)."""

from __future__ import annotations

import asyncio
import time

import pytest

from chatroom.models import RedisKeys
from chatroom.models.files import File
from chatroom.server import make_redis
from tests.files_helpers import png, uploaded

pytestmark = pytest.mark.timeout(60)


async def archived(app) -> None:
    archive = app.server.controllers.archive
    deadline = time.monotonic() + 10
    while (await archive.measure_lag()).messages:
        assert time.monotonic() < deadline, "the archiver did not catch up"
        await asyncio.sleep(0.05)


async def test_retention_deletes_the_files_of_the_messages_it_deletes(app_factory, redis_url):
    app = await app_factory(retention_days=1.0)
    alice = await app.client("alice")
    token = await app.api.login("alice")
    old = await uploaded(app, token, png(500, 500), "old.png")  # an image and its thumbnail
    kept = await uploaded(app, token, b"still wanted", "kept.txt")
    await alice.send_frame({"type": "send", "room": "lobby", "text": "", "files": [old["id"]]})
    assert (await alice.answer())["type"] == "ack"
    await asyncio.sleep(0.3)
    between = time.time()
    await asyncio.sleep(0.3)
    await alice.send_frame({"type": "send", "room": "lobby", "text": "hi", "files": [kept["id"]]})
    assert (await alice.answer())["type"] == "ack"
    await archived(app)
    files = app.server.chat.files
    assert len(list(files.storage.objects())) == 3

    # The server's own pass at start-up holds the retention lock for an interval.
    redis = make_redis(redis_url)
    try:
        await redis.delete(RedisKeys().archive_lock("retention"))
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    # A day after ``between``: the first message is past retention, the second is not.
    deleted = await app.server.controllers.archive.retention_once(now=between + 86400)
    assert deleted == 1

    assert (await app.api.request("GET", old["url"], token=token)).code == 404
    assert (await app.api.request("GET", kept["url"], token=token)).code == 200
    assert await files._run(lambda: [f.uid for f in File.select()]) == [kept["id"]]
    assert len(list(files.storage.objects())) == 1  # the image and its thumbnail went
