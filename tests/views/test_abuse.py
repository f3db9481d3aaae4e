"""Abuse through the real server: floods, oversize frames, password guessing (SPEC §3 limits).

Whoever abuses the server is limited or dropped; everyone else is served as usual.
Timings are measured and reported but only bounded generously: no tight timing asserts.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from tornado.websocket import WebSocketClosedError

from tests.helpers import PASSWORD, READ_TIMEOUT, ChatClient, body, connect

pytestmark = pytest.mark.timeout(60)


class Bug(AssertionError):
    """What an xfail test here expects: a broken guarantee, not a broken setup."""


#: Sends that ignore ``retry_after`` before the server closes with 1008 (SPEC §3).
IGNORED_RETRIES = 20


async def drain(client: ChatClient, into: list[tuple[float, dict]]) -> None:
    """Read like a live browser: every frame as soon as it arrives, with its arrival time."""
    while (raw := await client.ws.read_message()) is not None:
        into.append((time.monotonic(), orjson.loads(raw)))


async def flood_once(app, token: str) -> tuple[int, int, int | None, int]:
    """One socket that sends as fast as it can and never waits, until the server closes it:
    (acks, sends answered from the first refusal on, close code, frames written)."""
    client = ChatClient(await connect(app.ws_url, token), "flooder")
    assert (await client.next("hello"))["type"] == "hello"
    seen: list[tuple[float, dict]] = []
    reader = asyncio.create_task(drain(client, seen))
    written = 0
    try:
        for i in range(5000):
            await client.send(f"spam {i}", client_id=f"spam-{time.monotonic_ns()}-{i}")
            written += 1
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the reader notice the close
            if reader.done():
                break
    except WebSocketClosedError:
        pass
    await asyncio.wait_for(reader, READ_TIMEOUT)
    client.close()
    kinds = [f.get("code", f["type"]) for _, f in seen if f["type"] in ("ack", "error")]
    assert set(kinds) <= {"ack", "rate_limited"}, kinds
    answered = len(kinds) - kinds.index("rate_limited") if "rate_limited" in kinds else 0
    return kinds.count("ack"), answered, client.ws.close_code, written


async def test_a_flooder_is_cut_off_and_others_chat_on(app_factory):
    """One user floods (ignoring every retry_after, reconnecting when dropped) while two
    others talk at a normal pace: the flooder gets rate_limited and 1008; the others get
    every message, in order, quickly."""
    app = await app_factory()  # the production limits: 10 at once, then 2 per second
    flooder_token = await app.api.user("flooder")
    alice = await app.client("alice")
    bob = await app.client("bob")
    alice_saw: list[tuple[float, dict]] = []
    bob_saw: list[tuple[float, dict]] = []
    readers = [
        asyncio.create_task(drain(c, seen)) for c, seen in ((alice, alice_saw), (bob, bob_saw))
    ]
    talking = True
    floods: list[tuple[int, int, int | None, int]] = []

    async def flooder() -> None:
        while talking:
            floods.append(await flood_once(app, flooder_token))

    flooding = asyncio.create_task(flooder())
    sent_at: dict[str, float] = {}
    # 20 messages, one every 100 ms, alternating: 10 each in 2 s stays within the burst.
    for i in range(20):
        client = (alice, bob)[i % 2]
        cid = f"{client.name}-{i}"
        sent_at[cid] = time.monotonic()
        await client.send(f"{client.name} says {i}", client_id=cid)
        await asyncio.sleep(0.1)
    talking = False
    await asyncio.wait_for(flooding, 30)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(
            sum(f.get("client_id") in sent_at for _, f in seen if f["type"] == "message") == 20
            for seen in (alice_saw, bob_saw)
        ):
            break
        await asyncio.sleep(0.05)
    latencies = []
    for seen in (alice_saw, bob_saw):
        talk = [(at, f) for at, f in seen if f["type"] == "message" and f["user"] != "flooder"]
        assert [f["client_id"] for _, f in talk] == list(sent_at), "lost or reordered"
        ids = [f["id"] for _, f in seen if f["type"] == "message"]
        assert ids == sorted(set(ids)), "the room's order (or exactly-once) was broken"
        latencies += [at - sent_at[f["client_id"]] for at, f in talk]
    for seen in (alice_saw, bob_saw):
        refusals = [f for _, f in seen if f["type"] == "error"]
        assert not refusals, f"a polite user was refused: {refusals[:3]}"
    assert not any(r.done() for r in readers), "a polite user was disconnected"

    assert floods, "the flooder never got a socket"
    for acks, strikes, code, written in floods:
        assert code == 1008, f"a flooding socket ended with {code}, not 1008"
        # The first refusal, then 20 sends that ignore it: the 20th closes. (Which sends
        # count depends on timing: one that finds a refilled token may be acked, one
        # after retry_after restarts the count; the exact rule has its own test.)
        assert IGNORED_RETRIES <= strikes <= 2 * IGNORED_RETRIES, f"closed after {strikes}"
        assert acks + strikes < written, "the flooder's socket outlived its 20 strikes"
    total_acks = sum(f[0] for f in floods)
    # 10 at once, then 2 a second: about 14 in the ~2 s; generously bounded.
    assert total_acks <= 10 + 2 * 10, f"the flooder got {total_acks} messages through"
    worst = max(latencies)
    print(
        f"flood: {len(floods)} sockets cut off with 1008, {sum(f[3] for f in floods)} frames "
        f"written, {total_acks} acked; polite users: median latency "
        f"{sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms, worst {worst * 1000:.1f} ms"
    )
    assert worst < 1.0, f"a polite user's message took {worst:.3f}s under the flood"


async def test_the_20th_send_that_ignores_retry_after_closes_with_1008(app_factory):
    app = await app_factory()
    alice = await app.client("alice")
    for i in range(10):  # the burst
        await alice.send(f"burst {i}", client_id=f"b{i}")
    for i in range(10):
        await alice.next("ack", client_id=f"b{i}")
    # Now 21 sends at once: the first is refused (retry_after ~0.5 s), the next 20 ignore
    # it, and the 20th of those closes the socket.
    for i in range(21):
        await alice.send(f"too soon {i}", client_id=f"s{i}")
    errors = []
    while (frame := await alice.read_frame()) is not None:
        if frame["type"] in ("ack", "error"):
            errors.append(frame)
    assert alice.ws.close_code == 1008
    assert [e.get("code") for e in errors] == ["rate_limited"] * IGNORED_RETRIES, errors
    assert [e["client_id"] for e in errors] == [f"s{i}" for i in range(IGNORED_RETRIES)]
    assert all(0 < e["retry_after"] <= 0.5 for e in errors), errors


async def test_a_client_that_waits_retry_after_is_never_closed(app_factory):
    # Documented settings make the wait short; the rule is the same at 10 + 2/s.
    app = await app_factory(send_burst=3, send_per_second=20)
    alice = await app.client("alice")
    refused, previous_refused = 0, False
    for i in range(40):
        while True:
            await alice.send(f"patient {i}", client_id=f"p{i}")
            frame = await alice.answer()
            if frame["type"] == "ack":
                assert frame["client_id"] == f"p{i}"
                previous_refused = False
                break
            assert frame["code"] == "rate_limited", frame
            # Waiting exactly what the server said must be enough, every time.
            assert not previous_refused, f"refused again after waiting retry_after: {frame}"
            previous_refused = True
            refused += 1
            await asyncio.sleep(frame["retry_after"])
    assert refused > 0, "the limit never applied: this test tested nothing"
    assert alice.ws.close_code is None
    await alice.send_frame({"type": "ping"})
    await alice.next("pong")


async def test_a_user_may_hold_twelve_sockets(app):
    """SPEC: "at least 10" sockets per user; all twelve receive and send."""
    tabs = [await app.client("alice") for _ in range(12)]
    bob = await app.client("bob")
    await bob.send("to every tab", client_id="b1")
    for tab in tabs:
        assert (await tab.next("message", client_id="b1"))["text"] == "to every tab"
    for i, tab in enumerate(tabs):
        await tab.send(f"from tab {i}", client_id=f"tab-{i}")
        await tab.next("ack", client_id=f"tab-{i}")
    got = [await bob.next("message", user="alice") for _ in tabs]
    assert sorted(m["client_id"] for m in got) == sorted(f"tab-{i}" for i in range(12))
    assert all(tab.ws.close_code is None for tab in tabs)


async def test_an_oversize_frame_closes_only_that_socket(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    limit = 64 * 1024
    # Exactly at the limit is allowed: a ping padded to 64 KiB gets its pong.
    head = '{"type":"ping","pad":"'
    at_limit = head + "x" * (limit - len(head) - 2) + '"}'
    assert len(at_limit.encode()) == limit
    await alice.send_frame(at_limit)
    assert await alice.next("pong") == {"type": "pong"}
    # One byte more closes the socket with 1009, and nothing is stored.
    text = "y" * (limit - 100)
    frame = orjson.dumps({"type": "send", "room": "lobby", "text": text, "client_id": "big"})
    frame += b" " * (limit + 1 - len(frame))
    assert len(frame) == limit + 1
    await alice.send_frame(frame.decode())
    while await alice.ws.read_message() is not None:
        pass
    assert alice.ws.close_code == 1009
    # Everyone else is served; the offender may come back.
    await bob.send("still here", client_id="b1")
    assert (await bob.next("ack"))["id"] == 1
    again = await app.client("alice", join=None)
    assert [m["client_id"] for m in (await again.join("lobby"))["messages"]] == ["b1"]
    await again.send("sorry", client_id="a2")
    assert (await again.next("ack"))["id"] == 2
    assert (await bob.next("message", client_id="a2"))["text"] == "sorry"
    token = await app.api.login("bob")
    history = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert [m["client_id"] for m in history["messages"]] == ["b1", "a2"]


async def test_password_guessing_never_locks_out_the_owner(app_factory):
    """20 wrong passwords for alice from a guesser's address; alice, from her own, still
    gets in at once. (Behind a trusted proxy, so the test can speak from two addresses.)"""
    app = await app_factory(trusted_proxies=("127.0.0.1",), auth_burst=20)
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    owner = {"X-Forwarded-For": "198.51.100.7"}
    response = await app.api.request(
        "POST", "/api/register", {"username": "alice", "password": PASSWORD}, headers=owner
    )
    assert response.code == 201, response.body
    statuses = []
    for i in range(20):
        response = await app.api.request(
            "POST",
            "/api/login",
            {"username": "alice", "password": f"guess number {i}"},
            headers=guesser,
        )
        statuses.append(response.code)
        assert response.code in (401, 429), response.body
        expected = "unauthorized" if response.code == 401 else "rate_limited"
        assert body(response)["error"]["code"] == expected
    assert statuses[0] == 401
    print(f"guesses answered: {statuses.count(401)} x 401, {statuses.count(429)} x 429")
    response = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}, headers=owner
    )
    assert response.code == 200, f"the owner was locked out: {response.code} {response.body}"
    token = body(response)["token"]
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 200
    ws = ChatClient(await connect(app.ws_url, token), "alice")
    assert (await ws.next("hello"))["user"] == "alice"
    ws.close()


#: 100 messages of 4000 control characters: each is escaped to 6 bytes in JSON, so
#: lobby's retained history is a 2.4 MB ``joined`` frame (max_queued_bytes is 1 MiB).
LONG_TEXT = "\x01" * 4000


async def fill_lobby_with_long_messages(app) -> None:
    """Ten accounts each send their burst of 10: all within the default limits."""
    senders = [await app.client(f"user{i}", join=None) for i in range(10)]
    for sender in senders:
        for j in range(10):
            await sender.send(LONG_TEXT, client_id=f"{sender.name}-{j}")
    for sender in senders:
        for _ in range(10):
            await sender.next("ack")
        sender.close()


async def test_a_room_full_of_long_messages_can_still_be_joined(app_factory):
    app = await app_factory()
    await fill_lobby_with_long_messages(app)
    newcomer = await app.client("newcomer", join=None)
    await newcomer.send_frame({"type": "join", "room": "lobby"})
    raw = await asyncio.wait_for(newcomer.ws.read_message(), READ_TIMEOUT)
    assert raw is not None, (
        f"joining lobby closed the socket: {newcomer.ws.close_code} {newcomer.ws.close_reason}"
    )
    assert len(raw) > 2_000_000
    joined = orjson.loads(raw)
    assert joined["type"] == "joined" and len(joined["messages"]) == 100
    assert all(m["text"] == LONG_TEXT for m in joined["messages"])


async def test_joining_a_room_with_a_long_history_keeps_the_socket_open(app_factory):
    """With --history-size 500 (a documented setting) lobby's history is a 12 MB
    ``joined``: more than the kernel's socket buffers take at once (on a slow link, far
    less is). The frames that follow it (the joiner's own presence, the next message)
    must not drop the joiner as a "slow consumer": it would reconnect and rejoin forever."""
    app = await app_factory(send_burst=100_000, history_size=500)
    filler = await app.client("filler", join=None)
    for i in range(500):
        await filler.send(LONG_TEXT, client_id=f"f{i}")
    for _ in range(500):
        await filler.next("ack")
    newcomer = await app.client("newcomer", join=None)
    joined = await newcomer.join("lobby")
    assert len(joined["messages"]) == 500
    await filler.send("welcome", client_id="w")
    try:
        await newcomer.send_frame({"type": "ping"})
        await newcomer.next("pong")
        assert (await newcomer.next("message", client_id="w"))["text"] == "welcome"
    except (ConnectionError, WebSocketClosedError):
        raise Bug(
            f"the joiner was dropped: {newcomer.ws.close_code} {newcomer.ws.close_reason}"
        ) from None
