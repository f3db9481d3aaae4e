"""The archive's lag in a server that does not archive (``--archiver process`` or
``off``), on the real app: measured when /metrics or /healthz is served, never on a
timer; requests at once share one measurement; a failed one shows on /healthz while
/metrics still answers."""

from __future__ import annotations

import asyncio

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.helpers import body, count_measures
from tests.processes import free_port, metric, until

pytestmark = pytest.mark.timeout(60)

LAG = "chatroom_archive_lag_messages"


@pytest.fixture
async def quiet(app_factory):
    """A server that leaves archiving to another process, with its metrics listener."""
    port = free_port()
    app = await app_factory(archiver="off", metrics_port=port, send_burst=100_000)
    app.metrics_port = port
    return app


async def test_no_lag_is_measured_while_nobody_asks(quiet, monkeypatch):
    calls = count_measures(quiet.server.controllers.archive, monkeypatch)
    await asyncio.sleep(1.5)  # three passes of the old per-process timer
    assert calls == []
    assert await metric(quiet.metrics_port, LAG) == 0
    assert len(calls) == 1


async def test_the_lag_follows_the_messages_and_the_archiver_that_copies_them(quiet, app_factory):
    alice = await quiet.client("alice")
    for n in range(4):
        await alice.send(f"m{n}")
        await alice.next("ack")
    assert await metric(quiet.metrics_port, LAG) == 4
    assert await metric(quiet.metrics_port, "chatroom_archive_lag_seconds") >= 0
    health = body(await quiet.api.request("GET", "/healthz"))
    assert (health["status"], health["archive"]) == ("ok", "ok")  # behind only after 60 s
    await app_factory(archiver="on")  # a process that archives, on the same storage

    async def caught_up() -> bool:
        return await metric(quiet.metrics_port, LAG) == 0

    await until(caught_up, timeout=10, what="the lag back to 0")


async def test_requests_at_once_share_one_measurement(quiet, monkeypatch):
    calls = count_measures(quiet.server.controllers.archive, monkeypatch)
    client = AsyncHTTPClient()
    scrapes = [client.fetch(f"http://127.0.0.1:{quiet.metrics_port}/metrics") for _ in range(4)]
    checks = [quiet.api.request("GET", "/healthz") for _ in range(4)]
    responses = await asyncio.gather(*scrapes, *checks)
    assert {response.code for response in responses} == {200}
    assert len(calls) == 1


async def test_a_failed_measurement_shows_on_healthz_and_metrics_still_answer(quiet):
    keys = quiet.server.controllers.keys
    redis = quiet.server.redis
    await redis.rpush(keys.archived("lobby"), "not a number")  # Redis answers WRONGTYPE
    health = body(await quiet.api.request("GET", "/healthz"))
    assert health["archive"].startswith("error: ResponseError"), health
    assert health["status"] == "ok"  # a detail: the process stays in service
    assert await metric(quiet.metrics_port, "chatroom_archive_failures_total") == 1
    await redis.delete(keys.archived("lobby"))

    async def healthy() -> bool:
        return body(await quiet.api.request("GET", "/healthz"))["archive"] == "ok"

    await until(healthy, timeout=10, what="the archive detail back to ok")
