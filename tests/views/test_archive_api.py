"""The archive's HTTP API on the real app (SPEC §7): paging past what Redis retains,
search, their bad input, the archive detail of /healthz and the lag in /metrics."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.helpers import body

pytestmark = pytest.mark.timeout(60)


async def _archived(app, room: str = "lobby", count: int = 0) -> None:
    """Wait until the running archiver has copied ``count`` messages of ``room``."""
    archive = app.server.controllers.archive
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lag = await archive.measure_lag()
        if lag.messages == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the archiver did not catch up")


@pytest.fixture
async def chatty(app_factory):
    app = await app_factory(history_size=5, send_burst=100_000)
    alice = await app.client("alice")
    for n in range(1, 31):
        await alice.send(f"message {n} 会议" if n % 10 == 0 else f"message {n}")
        await alice.next("ack")
    await _archived(app)
    app.token = await app.api.login("alice")
    return app


async def test_paging_goes_back_to_message_one(chatty):
    app, token = chatty, chatty.token
    seen, before = [], ""
    while True:
        page = body(
            await app.api.request("GET", f"/api/rooms/lobby/messages?limit=7{before}", token=token)
        )
        ids = [m["id"] for m in page["messages"]]
        seen = ids + seen
        if not page["more"]:
            break
        before = f"&before={ids[0]}"
    assert seen == list(range(1, 31))
    # Without before/limit the endpoint answers as in 0.1: the retained history.
    retained = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert [m["id"] for m in retained["messages"]] == [26, 27, 28, 29, 30]
    around = body(
        await app.api.request("GET", "/api/rooms/lobby/messages?before=12&limit=3", token=token)
    )
    assert [m["id"] for m in around["messages"]] == [9, 10, 11]
    assert around["messages"][1]["text"] == "message 10 会议"


@pytest.mark.parametrize(
    "query",
    ["before=0", "before=-3", "before=abc", "before=1e3", "limit=0", "limit=201", "limit=",
     "limit=5&limit=6", "before=9007199254740993", "since=1&limit=5", "before=%ff"],
)  # fmt: skip
async def test_paging_refuses_bad_values(chatty, query):
    response = await chatty.api.request(
        "GET", f"/api/rooms/lobby/messages?{query}", token=chatty.token
    )
    assert response.code == 400, query
    assert body(response)["error"]


async def test_paging_and_search_need_a_session_and_access(chatty):
    api = chatty.api
    assert (await api.request("GET", "/api/rooms/lobby/messages?limit=5")).code == 401
    assert (await api.request("GET", "/api/search?q=message")).code == 401
    bob = await api.user("bob")
    carol = await api.user("carol")
    dm = await api.request("GET", "/api/rooms/dm:bob:carol/messages?limit=5", token=bob)
    assert dm.code == 200 and body(dm) == {"messages": [], "more": False}
    denied = await api.request("GET", "/api/rooms/dm:alice:bob/messages?limit=5", token=carol)
    assert denied.code == 403
    missing = await api.request("GET", "/api/rooms/nowhere/messages?limit=5", token=carol)
    assert missing.code == 404
    assert (await api.request("GET", "/api/search?q=x&room=dm:alice:bob", token=carol)).code == 403


async def test_search_over_http(chatty):
    api, token = chatty.api, chatty.token
    found = body(await api.request("GET", "/api/search?q=" + quote("会议 MESSAGE"), token=token))
    assert [r["id"] for r in found["results"]] == [30, 20, 10]
    assert set(found["results"][0]) == {"room", "id", "user", "text", "ts"}
    assert found["more"] is False
    first = body(await api.request("GET", "/api/search?q=message&limit=2", token=token))
    assert ([r["id"] for r in first["results"]], first["more"]) == ([30, 29], True)
    older = body(await api.request("GET", "/api/search?q=message&room=lobby&before=3", token=token))
    assert [r["id"] for r in older["results"]] == [2, 1]
    by_user = body(await api.request("GET", "/api/search?q=message&user=bob", token=token))
    assert by_user == {"results": [], "more": False}
    hostile = body(await api.request("GET", "/api/search?q=" + quote("%_ NEAR \"'*"), token=token))
    assert hostile == {"results": [], "more": False}


@pytest.mark.parametrize(
    "query",
    ["", "q=", "q=%20%20", "q=" + "x" * 201, "q=a&limit=0", "q=a&limit=500", "q=a&before=2",
     "q=a&room=lobby&before=x", "q=a&user=" + quote("not a name"), "q=a&q=b", "q=a&colour=red",
     "q=%ff"],
)  # fmt: skip
async def test_search_refuses_bad_values(chatty, query):
    response = await chatty.api.request("GET", f"/api/search?{query}", token=chatty.token)
    assert response.code == 400, query


async def test_search_takes_200_code_points_not_bytes(chatty):
    q = quote("会" * 200)
    response = await chatty.api.request("GET", f"/api/search?q={q}", token=chatty.token)
    assert response.code == 200


async def test_concurrent_searches_and_pages(chatty):
    api, token = chatty.api, chatty.token
    calls = [api.request("GET", "/api/search?q=message", token=token) for _ in range(10)] + [
        api.request("GET", f"/api/rooms/lobby/messages?before={n}&limit=5", token=token)
        for n in range(2, 12)
    ]
    assert {r.code for r in await asyncio.gather(*calls)} == {200}


async def test_healthz_and_metrics_show_the_archive(app_factory):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = await app_factory(metrics_port=port, send_burst=100_000)
    alice = await app.client("alice")
    await alice.send("hello")
    await alice.next("ack")
    await _archived(app)
    health = body(await app.api.request("GET", "/healthz"))
    assert health["archive"] == "ok" and health["status"] == "ok"
    metrics = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/metrics")
    text = metrics.body.decode()
    assert "chatroom_archive_lag_messages 0.0" in text
    assert "chatroom_archive_lag_seconds" in text
