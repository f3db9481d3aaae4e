"""The WebSocket protocol (SPEC §3) and guarantees (SPEC §4) through the real server."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from tornado.httpclient import HTTPClientError

from tests.helpers import ChatClient, connect, without_epoch


async def test_hello_then_joined_with_history(app):
    alice = await app.client("alice", join=None)
    rooms = alice.hello["rooms"]
    assert without_epoch(rooms) == [
        {
            "name": "lobby",
            "unread": 0,
            "last_id": 0,
            "mentions": 0,
            "private": False,
            "role": "member",
        }
    ]
    joined = await alice.join("lobby")
    assert joined == {
        "epoch": rooms[0]["epoch"],
        "type": "joined",
        "room": "lobby",
        "messages": [],
        "gap": False,
        "missing": 0,
        "online": ["alice"],
        "rev": 0,
    }


async def test_message_reaches_every_member_once_and_ack_only_the_sender(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    await alice.send("hi bob", client_id="c1")
    ack = await alice.next("ack")
    assert ack == {"type": "ack", "client_id": "c1", "id": 1, "room": "lobby"}
    for client in (alice, bob):
        message = await client.next("message")
        assert {k: message[k] for k in ("room", "id", "user", "text", "client_id")} == {
            "room": "lobby",
            "id": 1,
            "user": "alice",
            "text": "hi bob",
            "client_id": "c1",
        }
        assert isinstance(message["ts"], float)
    await bob.nothing("ack")
    await bob.nothing("message")


async def test_send_without_client_id_acks_null(app):
    alice = await app.client("alice")
    await alice.send("no id")
    ack = await alice.next("ack")
    assert ack["client_id"] is None and ack["id"] == 1
    message = await alice.next("message")
    assert "client_id" not in message


async def test_retry_with_same_client_id_is_stored_once(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    await alice.send("only once", client_id="retry-1")
    first = await alice.next("ack")
    await bob.next("message")
    await alice.send("only once", client_id="retry-1")
    second = await alice.next("ack")
    assert second["id"] == first["id"] == 1
    await bob.nothing("message")
    history = await bob.join("lobby", since=0)
    assert [m["text"] for m in history["messages"]] == ["only once"]


async def test_offline_user_gets_exactly_the_last_100_of_150(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    bob.close()
    for i in range(150):
        await alice.send(f"message {i}")
        await alice.next("ack")
    again = await app.client("bob", join=None)
    assert without_epoch(again.hello["rooms"]) == [
        {"name": "lobby", "unread": 150, "last_id": 150, "mentions": 0}
        | {"private": False, "role": "member"}
    ]
    joined = await again.join("lobby")
    assert [m["id"] for m in joined["messages"]] == list(range(51, 151))
    assert joined["messages"][0]["text"] == "message 50"
    assert (joined["gap"], joined["missing"]) == (False, 0)


async def test_since_recovery_is_exact_or_reports_the_gap(app):
    alice = await app.client("alice")
    for i in range(120):
        await alice.send(f"m{i}")
        await alice.next("ack")
    bob = await app.client("bob", join=None)
    recent = await bob.join("lobby", since=110)
    assert [m["id"] for m in recent["messages"]] == list(range(111, 121))
    assert (recent["gap"], recent["missing"]) == (False, 0)
    old = await bob.join("lobby", since=5)
    # retained: 21..120; ids 6..20 are gone.
    assert [m["id"] for m in old["messages"]] == list(range(21, 121))
    assert (old["gap"], old["missing"]) == (True, 15)
    future = await bob.join("lobby", since=500)
    assert (future["messages"], future["gap"], future["missing"]) == ([], False, 0)


@pytest.mark.parametrize("since", [-1, 2**53 + 1, "5", 1.5, True, None])
async def test_since_must_be_an_integer_in_range(app, since):
    alice = await app.client("alice", join=None)
    await alice.send_frame({"type": "join", "room": "lobby", "since": since})
    if since is None:  # explicit null means "no since"
        assert (await alice.next("joined"))["room"] == "lobby"
        return
    error = await alice.next("error")
    assert error["code"] == "bad_request" and error["room"] == "lobby"


async def test_order_and_ids_across_concurrent_senders(app):
    senders = [await app.client(f"user{i}") for i in range(5)]
    observer = await app.client("observer")
    per_sender = 20

    async def burst(client: ChatClient) -> None:
        for i in range(per_sender):
            await client.send(f"{client.name}:{i}", client_id=f"{client.name}-{i}")
            await asyncio.sleep(0)

    await asyncio.gather(*(burst(c) for c in senders))
    received = [await observer.next("message") for _ in range(5 * per_sender)]
    assert [m["id"] for m in received] == list(range(1, 101))
    for client in senders:
        mine = [m["text"] for m in received if m["user"] == client.name]
        assert mine == [f"{client.name}:{i}" for i in range(per_sender)]
    await observer.nothing("message")


async def test_leave_stops_delivery_but_keeps_membership(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    token = await app.api.login("alice")
    await app.api.request("POST", "/api/rooms", {"name": "marker"}, token=token)
    await alice.join("marker")
    await bob.join("marker")
    await bob.send_frame({"type": "leave", "room": "lobby"})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")  # frames of one socket are handled in order: leave is done
    await alice.send("after leave")
    await alice.next("ack")
    await alice.send("marker", room="marker")
    # Both messages leave this process in order: had bob still been in lobby, the
    # lobby message would have reached him before the marker.
    assert (await bob.next("message"))["room"] == "marker"
    assert not [f for f in bob.unread if f.get("type") == "message"]
    rooms = orjson.loads(
        (await app.api.request("GET", "/api/rooms", token=await app.api.login("bob"))).body
    )
    assert any(r["name"] == "lobby" and r["member"] for r in rooms["rooms"])


async def test_typing_reaches_others_not_the_typer(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    await alice.send_frame({"type": "typing", "room": "lobby"})
    assert await bob.next("typing") == {"type": "typing", "room": "lobby", "user": "alice"}
    await alice.nothing("typing")


async def test_presence_follows_connections(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    assert await alice.next("presence", user="bob") == {
        "type": "presence",
        "room": "lobby",
        "user": "bob",
        "state": "online",
    }
    second_tab = await app.client("bob")
    bob.close()
    await alice.nothing("presence", wait=0.5, user="bob")  # bob still has a tab open
    second_tab.close()
    offline = await alice.next("presence", user="bob")
    assert offline["state"] == "offline"


async def test_read_marker_sets_exact_unread(app):
    alice = await app.client("alice")
    for i in range(7):
        await alice.send(f"m{i}")
        await alice.next("ack")
    bob = await app.client("bob", join=None)
    assert bob.hello["rooms"][0]["unread"] == 7
    await bob.send_frame({"type": "read", "room": "lobby", "id": 4})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")
    later = await app.client("bob", join=None)
    assert without_epoch(later.hello["rooms"])[0] == {
        "name": "lobby",
        "unread": 3,
        "last_id": 7,
        "mentions": 0,
    } | {
        "private": False,
        "role": "member",
    }


async def test_ping_pong(app):
    alice = await app.client("alice", join=None)
    await alice.send_frame({"type": "ping"})
    assert await alice.next("pong") == {"type": "pong"}


HOSTILE_TEXTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "emoji 😀👍🏽 and 中文",
    "tabs\tand\r\nnewlines\x07bell",
    "  leading and trailing spaces  ",
    '"quotes" and \\backslashes\\',
    "x" * 4000,
]


async def test_text_is_stored_and_relayed_verbatim(app):
    alice = await app.client("alice")
    for text in HOSTILE_TEXTS:
        await alice.send(text)
        await alice.next("ack")
        assert (await alice.next("message"))["text"] == text
    later = await app.client("bob", join=None)
    history = await later.join("lobby")
    assert [m["text"] for m in history["messages"]] == HOSTILE_TEXTS


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        ('"just a string"', "bad_request"),
        ("{}", "bad_request"),
        ('{"type": "explode"}', "bad_request"),
        ('{"type": 7}', "bad_request"),
        ('{"type": "send", "room": "lobby"}', "bad_request"),
        ('{"type": "send", "room": "lobby", "text": 5}', "bad_request"),
        ('{"type": "send", "room": "lobby", "text": ""}', "bad_request"),
        ('{"type": "send", "room": "lobby", "text": "nul\\u0000"}', "bad_request"),
        ('{"type": "send", "room": "lobby", "text": "\\ud800"}', "bad_request"),
        ('{"type": "send", "room": "lobby", "text": "' + "x" * 4001 + '"}', "too_long"),
        ('{"type": "send", "room": "Lobby!", "text": "hi"}', "bad_request"),
        ('{"type": "send", "room": ["lobby"], "text": "hi"}', "bad_request"),
        ('{"type": "send", "room": "nowhere", "text": "hi"}', "not_found"),
        ('{"type": "send", "room": "lobby", "text": "hi", "client_id": 5}', "bad_request"),
        (
            '{"type": "send", "room": "lobby", "text": "hi", "client_id": "' + "c" * 65 + '"}',
            "bad_request",
        ),
        ('{"type": "join"}', "bad_request"),
        ('{"type": "join", "room": "nowhere"}', "not_found"),
        ('{"type": "join", "room": "dm:carol:dave"}', "forbidden"),
        ('{"type": "read", "room": "lobby", "id": "3"}', "bad_request"),
        ('{"type": "read", "room": "lobby", "id": -1}', "bad_request"),
        ('{"type": "leave", "room": 3}', "bad_request"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(app, frame, code):
    alice = await app.client("alice")
    await alice.send_frame(frame)
    error = await alice.next("error")
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    await alice.send("still works", client_id="after")
    assert (await alice.next("ack"))["client_id"] == "after"


async def test_error_frame_echoes_room_and_client_id(app):
    alice = await app.client("alice")
    await alice.send_frame({"type": "send", "room": "lobby", "text": "", "client_id": "k1"})
    error = await alice.next("error")
    assert (error["room"], error["client_id"]) == ("lobby", "k1")


async def test_many_bad_frames_never_close_the_socket(app):
    alice = await app.client("alice")
    for i in range(200):
        await alice.send_frame("{" * (i % 7 + 1))
    for _ in range(200):
        assert (await alice.next("error"))["code"] == "bad_request"
    await alice.send("alive")
    await alice.next("ack")


async def test_binary_frame_is_a_bad_request(app):
    alice = await app.client("alice")
    await alice.ws.write_message(b'{"type":"ping"}', binary=True)
    assert (await alice.next("error"))["code"] == "bad_request"


async def test_oversized_frame_closes_with_1009(app):
    alice = await app.client("alice")
    await alice.send_frame({"type": "send", "room": "lobby", "text": "x" * (70 * 1024)})
    while await alice.ws.read_message() is not None:  # frames sent before the close
        pass
    assert alice.ws.close_code == 1009


async def test_rate_limit_answers_retry_after(app_factory):
    app = await app_factory()
    alice = await app.client("alice")
    for i in range(10):
        await alice.send(f"burst {i}")
    for _ in range(10):
        await alice.next("ack")
    await alice.send("one too many", client_id="over")
    error = await alice.next("error")
    assert error["code"] == "rate_limited" and error["client_id"] == "over"
    assert 0 < error["retry_after"] <= 1.0
    await asyncio.sleep(error["retry_after"])
    await alice.send("after waiting")
    assert (await alice.next("ack"))["id"] == 11


async def test_a_user_may_hold_ten_sockets(app):
    clients = [await app.client("alice") for _ in range(10)]
    await clients[0].send("to all tabs")
    for client in clients:
        assert (await client.next("message"))["text"] == "to all tabs"


async def test_direct_messages_are_private_to_the_two(app):
    alice = await app.client("alice")
    bob = await app.client("Bob")
    carol = await app.client("carol")
    room = "dm:alice:bob"
    await alice.join(room)
    await bob.join(room)
    await alice.send("psst", room=room)
    await alice.next("ack")
    assert (await bob.next("message"))["text"] == "psst"
    await carol.send_frame({"type": "join", "room": room})
    assert (await carol.next("error"))["code"] == "forbidden"
    await carol.send_frame({"type": "send", "room": room, "text": "let me in"})
    assert (await carol.next("error"))["code"] == "forbidden"
    later = await app.client("bob", join=None)
    assert {"name": room, "unread": 1, "last_id": 1, "mentions": 0} | {
        "private": False,
        "role": "member",
    } in without_epoch(later.hello["rooms"])


async def test_no_credentials_is_401_before_upgrade(app):
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url)
    assert info.value.code == 401


async def test_forged_token_and_cookie_are_401(app):
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url, token="forged-token")
    assert info.value.code == 401
    headers = {"Cookie": "chatroom_session=forged|value", "Origin": app.base_url}
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url, headers=headers)
    assert info.value.code == 401


async def test_foreign_origin_is_403(app):
    token = await app.api.user("alice")
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url, token, headers={"Origin": "https://evil.example"})
    assert info.value.code == 403


async def test_cookie_socket_needs_an_origin(app):
    await app.api.user("alice")
    login = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": "correct horse battery"}
    )
    cookie = login.headers["Set-Cookie"].split(";")[0]
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url, headers={"Cookie": cookie})
    assert info.value.code == 403
    ws = await connect(app.ws_url, headers={"Cookie": cookie, "Origin": app.base_url})
    client = ChatClient(ws, "alice")
    assert (await client.next("hello"))["user"] == "alice"
    ws.close()


async def test_logout_revokes_the_token_for_new_sockets(app):
    token = await app.api.user("alice")
    response = await app.api.request("POST", "/api/logout", token=token)
    assert response.code == 200
    with pytest.raises(HTTPClientError) as info:
        await connect(app.ws_url, token)
    assert info.value.code == 401
