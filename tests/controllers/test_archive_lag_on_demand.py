"""The lag of a process that does not archive (``--archiver process`` or ``off``),
measured when /metrics or /healthz asks (``ArchiveController.fresh_lag``), on SQLite
and PostgreSQL: afresh after the freshness window, once for callers at once, and a
failure kept for /healthz."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.controllers import archive as archive_module
from tests.controllers import test_archive
from tests.helpers import count_measures

# The fixtures of test_archive.py: a database per backend, and the archive's parts.
archive_db = test_archive.archive_db
make_archive = test_archive.make_archive

pytestmark = pytest.mark.timeout(60)


async def test_the_lag_is_measured_afresh_once_the_last_measure_is_stale(make_archive, monkeypatch):
    env = await make_archive()
    monkeypatch.setattr(archive_module, "LAG_FRESH_SECONDS", 0.0)  # every call measures
    await env.send("lobby", 5)
    lag = await env.archive.fresh_lag()
    assert (lag.messages, lag.error) == (5, None) and lag.seconds >= 0
    assert env.metrics.registry.get_sample_value("chatroom_archive_lag_messages") == 5
    await env.another_archiver().archive_once()  # another process archives
    assert (await env.archive.fresh_lag()).messages == 0
    assert env.metrics.registry.get_sample_value("chatroom_archive_lag_messages") == 0


async def test_a_fresh_measure_is_reused_and_callers_at_once_share_one(make_archive, monkeypatch):
    env = await make_archive()
    await env.send("lobby", 3)
    calls = count_measures(env.archive, monkeypatch)
    lags = await asyncio.gather(*(env.archive.fresh_lag() for _ in range(6)))
    assert [lag.messages for lag in lags] == [3] * 6
    assert len(calls) == 1
    await env.send("lobby", 1)
    assert (await env.archive.fresh_lag()).messages == 3  # within the window: as measured
    assert len(calls) == 1


async def test_a_failed_measure_is_reported_by_health_and_the_next_one_clears_it(
    make_archive, monkeypatch
):
    env = await make_archive()
    monkeypatch.setattr(archive_module, "LAG_FRESH_SECONDS", 0.0)
    await env.send("lobby", 2)
    watermark = env.keys.archived("lobby")
    await env.redis.rpush(watermark, "not a number")  # Redis answers WRONGTYPE
    assert (await env.archive.health()).startswith("error: ResponseError")
    assert env.metrics.registry.get_sample_value("chatroom_archive_failures_total") == 1
    await env.redis.delete(watermark)
    assert await env.archive.health() == "ok"
    assert env.archive.lag.messages == 2
