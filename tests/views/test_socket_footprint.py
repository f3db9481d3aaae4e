"""What an idle socket keeps (issue 17, RSS per idle connection): no ping task of its own,
no upgrade headers, dicts that share their keys; and the upgrade checks chatroom now
makes itself instead of Tornado's ``WebSocketHandler.get``."""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

from chatroom.views.socket import ChatSocketHandler
from tests.helpers import body

pytestmark = pytest.mark.usefixtures("close_opened_sockets")


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}


def open_handlers() -> list[ChatSocketHandler]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, ChatSocketHandler) and o.ws_connection is not None
    ]


async def test_an_idle_socket_keeps_no_task_headers_or_big_dicts(app_factory) -> None:
    app = await app_factory()
    tasks_before = len(asyncio.all_tasks())
    clients = [await app.client(f"user{i}") for i in range(5)]
    for client in clients:
        await client.send_frame({"type": "ping"})
        await client.next("pong")
    names = [t.get_coro().__qualname__ for t in asyncio.all_tasks()]
    assert not [n for n in names if "ping" in n.lower()], names
    # Tornado's request loop and the handler's own coroutine chain: two per socket;
    # and at most one wait of the server's own background loops (the archiver's pause
    # between passes), however many sockets: never one a socket.
    assert len(asyncio.all_tasks()) - tasks_before <= 2 * len(clients) + 1
    handlers = open_handlers()
    assert len(handlers) >= 5
    for handler in handlers:
        assert dict(handler.request.headers) == {}
        assert dict(handler._headers) == {}  # the 101 response's
        # Tornado's protocol holds ~30 attributes: two more of ours made its dict a
        # private one of 1.5 KiB; they are slots now.
        assert sys.getsizeof(vars(handler.ws_connection)) < 600
        assert sys.getsizeof(vars(handler)) <= 832
        assert handler._stall_marks is not None and len(handler._stall_marks) <= 2


async def test_keepalive_keeps_a_client_that_answers_pings(app_factory) -> None:
    app = await app_factory(ping_interval=0.2, ping_timeout=0.2)
    alice = await app.client("alice")  # Tornado's client answers pings by itself
    await asyncio.sleep(1.0)  # five rounds of pings
    await alice.send_frame({"type": "ping"})
    assert (await alice.next("pong"))["type"] == "pong"
    assert len(app.server.app.settings["pinger"]) >= 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Connection": "Upgrade", "Sec-WebSocket-Version": "13"}, 400),  # no Upgrade
        ({"Upgrade": "h2c", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}, 400),
        ({"Upgrade": "websocket", "Connection": "keep-alive", "Sec-WebSocket-Version": "13"}, 400),
        ({"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "8"}, 426),
        # Tornado >= 6.5: a cross-site fetch must name its Origin
        ({**UPGRADE, "Sec-Fetch-Site": "cross-site"}, 403),
    ],
)
async def test_malformed_upgrades_are_refused(app_factory, headers, status) -> None:
    app = await app_factory()
    token = await app.api.user("alice")
    headers = {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers}
    response = await app.api.request("GET", "/ws", token=token, headers=headers)
    assert response.code == status, response
    if status in (400, 403):
        assert body(response)["error"]["code"] == ("bad_request" if status == 400 else "forbidden")
    else:
        assert response.headers["Sec-WebSocket-Version"] == "13"


async def test_an_unauthenticated_upgrade_is_still_401_first(app_factory) -> None:
    app = await app_factory()
    response = await app.api.request("GET", "/ws", headers={"Connection": "keep-alive"})
    assert response.code == 401
