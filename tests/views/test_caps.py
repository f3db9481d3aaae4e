"""SPEC §10's per-user caps through the real server: open sockets (across processes),
rooms created per hour, joins per socket, and a room's full history once per socket."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.helpers import PASSWORD, READ_TIMEOUT, Browser, ChatClient, body, connect

pytestmark = pytest.mark.timeout(90)


async def open_socket(app, token: str) -> tuple[str, object]:
    """("hello", ws) for an admitted socket, else ("closed", ws) with its close code."""
    ws = await connect(app.ws_url, token)
    raw = await asyncio.wait_for(ws.read_message(), READ_TIMEOUT)
    if raw is None:
        return "closed", ws
    return orjson.loads(raw)["type"], ws


async def test_thirty_sockets_at_once_admit_exactly_twenty(app):
    token = await app.api.user("alice")
    results = await asyncio.gather(*(open_socket(app, token) for _ in range(30)))
    admitted = [ws for kind, ws in results if kind == "hello"]
    refused = [ws for kind, ws in results if kind == "closed"]
    assert len(admitted) == 20 and len(refused) == 10
    for ws in refused:
        assert (ws.close_code, ws.close_reason) == (1008, "too many connections")
        ws.close()
    # Another user is not affected.
    bob = await app.client("bob")
    await bob.send("hi")
    await bob.next("ack")
    # A closed socket frees its place.
    admitted[0].close()
    for _ in range(50):
        kind, replacement = await open_socket(app, token)
        if kind == "hello":
            break
        replacement.close()
        await asyncio.sleep(0.05)
    assert kind == "hello"
    for ws in [*admitted[1:], replacement]:
        ws.close()


async def test_the_socket_cap_counts_across_processes(app_factory):
    first = await app_factory(max_sockets_per_user=5)
    second = await app_factory(max_sockets_per_user=5)
    token = await first.api.user("alice")
    results = await asyncio.gather(
        *(open_socket(app, token) for app in (first, second) for _ in range(6))
    )
    kinds = [kind for kind, _ in results]
    assert kinds.count("hello") == 5 and kinds.count("closed") == 7, kinds
    for _, ws in results:
        ws.close()


async def test_socket_counts_of_a_dead_process_are_swept(redis_url):
    from chatroom.models import PresenceRepository, RedisKeys
    from chatroom.models.presence import user_member
    from chatroom.storage import make_redis

    client = make_redis(redis_url)
    presence = PresenceRepository(client, RedisKeys())
    try:
        await presence.register("dead", 2, ttl=0.2)
        await presence.index("dead", [user_member(7)])
        assert await presence.claim_socket(7, "dead", 2)
        assert await presence.claim_socket(7, "dead", 2)
        assert not await presence.claim_socket(7, "live", 2)
        # The process holding both died: its liveness expires, a live one sweeps it.
        await asyncio.sleep(0.3)
        assert await presence.dead_processes() == ["dead"]
        await presence.sweep("dead")
        assert await presence.claim_socket(7, "live", 2)
    finally:
        await client.aclose()
        await client.connection_pool.disconnect()


async def create_room(app, token: str, name: str):
    return await app.api.request("POST", "/api/rooms", {"name": name}, token=token)


async def test_rooms_created_per_hour_are_capped_with_retry_after(app_factory):
    app = await app_factory(rooms_per_hour=3)
    token = await app.api.user("alice")
    codes = [(await create_room(app, token, f"room{i}")).code for i in range(3)]
    assert codes == [201] * 3
    response = await create_room(app, token, "room3")
    assert response.code == 429
    assert body(response)["error"]["code"] == "rate_limited"
    assert 1000 <= int(response.headers["Retry-After"]) <= 1200  # one per 20 minutes
    rooms = body(await app.api.request("GET", "/api/rooms", token=token))["rooms"]
    assert "room3" not in [r["name"] for r in rooms]
    # Someone else still creates rooms.
    bob = await app.api.user("bob")
    assert (await create_room(app, bob, "bobs")).code == 201


async def test_concurrent_room_creation_passes_the_cap_exactly(app_factory):
    app = await app_factory(rooms_per_hour=4)
    token = await app.api.user("alice")
    responses = await asyncio.gather(*(create_room(app, token, f"r{i}") for i in range(30)))
    codes = sorted(r.code for r in responses)
    assert codes == [201] * 4 + [429] * 26, codes


async def test_the_new_room_form_is_capped_too(app_factory):
    app = await app_factory(rooms_per_hour=1)
    await app.api.register("alice")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    assert (await browser.post_form("/rooms", {"name": "first"})).code == 303
    response = await browser.post_form("/rooms", {"name": "second"})
    assert response.code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert b"<html" in response.body.lower()


async def test_joins_per_socket_are_capped_with_retry_after(app_factory):
    app = await app_factory(joins_per_minute=5)
    alice = await app.client("alice", join=None)
    for _ in range(5):
        await alice.join("lobby")
    await alice.send_frame({"type": "join", "room": "lobby"})
    error = await alice.next("error")
    assert (error["code"], error["room"]) == ("rate_limited", "lobby")
    assert 0 < error["retry_after"] <= 12
    # The socket stays open and usable.
    await alice.send("still here")
    await alice.next("ack")
    # A fresh socket has its own budget.
    again = await app.client("alice", join=None)
    await again.join("lobby")


async def fill(app, room: str, count: int, text: str) -> None:
    filler = await app.client("filler", join=None)
    for i in range(count):
        await filler.send(text, room=room, client_id=f"fill-{i}")
    for _ in range(count):
        await filler.next("ack")
    filler.close()


async def bytes_until_pong(client: ChatClient) -> tuple[int, list[dict]]:
    total, frames = 0, []
    while True:
        raw = await asyncio.wait_for(client.ws.read_message(), READ_TIMEOUT)
        assert raw is not None, f"closed: {client.ws.close_code} {client.ws.close_reason}"
        total += len(raw)
        frame = orjson.loads(raw)
        if frame["type"] == "pong":
            return total, frames
        frames.append(frame)


async def test_twenty_join_frames_do_not_resend_the_history_twenty_times(app_factory):
    """Issue 10 item 8: 20 ``join`` frames of 31 bytes made the server send 48 MB."""
    app = await app_factory(send_burst=100_000)
    await fill(app, "lobby", 100, "x" * 3000)
    reader = await app.client("reader", join=None)
    frame = orjson.dumps({"type": "join", "room": "lobby"}).decode()
    assert len(frame) <= 31
    for _ in range(20):
        await reader.send_frame(frame)
    await reader.send_frame({"type": "ping"})
    total, frames = await bytes_until_pong(reader)
    joined = [f for f in frames if f["type"] == "joined"]
    assert len(joined) == 20
    assert len(joined[0]["messages"]) == 100
    assert all(f["messages"] == [] and not f["gap"] for f in joined[1:])
    one_history = 100 * 3000
    assert total < 1.2 * one_history, f"{total} bytes for 20 joins"


async def test_a_rejoin_without_since_gets_only_what_is_new(app_factory):
    app = await app_factory(send_burst=100_000)
    alice = await app.client("alice")
    for i in range(3):
        await alice.send(f"m{i}")
        await alice.next("ack")
    bob = await app.client("bob", join=None)
    assert [m["text"] for m in (await bob.join("lobby"))["messages"]] == ["m0", "m1", "m2"]
    await bob.send_frame({"type": "leave", "room": "lobby"})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")  # a socket's frames are handled in order: the leave is done
    await alice.send("while bob was away")
    await alice.next("ack")
    again = await bob.join("lobby")
    assert [m["text"] for m in again["messages"]] == ["while bob was away"]
    assert (again["gap"], again["missing"]) == (False, 0)
    # Asking with since is always answered as asked.
    explicit = await bob.join("lobby", since=0)
    assert [m["id"] for m in explicit["messages"]] == [1, 2, 3, 4]
    # A new socket starts afresh.
    fresh = await app.client("bob", join=None)
    assert len((await fresh.join("lobby"))["messages"]) == 4


async def test_a_rejoin_after_trimming_reports_the_exact_gap(app_factory):
    app = await app_factory(send_burst=100_000, history_size=5)
    alice = await app.client("alice")
    await alice.send("first")
    await alice.next("ack")
    bob = await app.client("bob")  # has id 1
    await bob.send_frame({"type": "leave", "room": "lobby"})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")  # a socket's frames are handled in order: the leave is done
    for i in range(8):
        await alice.send(f"later {i}")
        await alice.next("ack")
    again = await bob.join("lobby")  # ids 2..9 were sent; 5..9 are retained
    assert [m["id"] for m in again["messages"]] == [5, 6, 7, 8, 9]
    assert (again["gap"], again["missing"]) == (True, 3)
