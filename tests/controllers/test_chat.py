"""ChatController with real repositories, the real listener and recording connections."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chatroom.controllers import ChatController, RoomController, SendLimits, frames
from chatroom.controllers.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TooLongError,
    UnavailableError,
)
from chatroom.controllers.limits import MAX_IGNORED_RETRIES
from chatroom.models import MessageRepository, PresenceRepository, RedisKeys
from chatroom.storage import make_redis
from tests.controllers.conftest import FRAME_TIMEOUT, ChatEnv, RecordingConnection
from tests.helpers import without_epoch


def message_ids(conn: RecordingConnection, room: str = "lobby") -> list[int]:
    return [f["id"] for f in conn.of_type("message") if f["room"] == room]


def presence(conn: RecordingConnection, room: str = "lobby") -> list[tuple[str, str]]:
    return [(f["user"], f["state"]) for f in conn.of_type("presence") if f["room"] == room]


async def test_connect_says_hello_first_with_the_users_rooms(env: ChatEnv) -> None:
    alice = await env.user("Alice")
    await env.messages.append("lobby", "someone", "before")
    conn = await env.connect(alice)
    (_, epoch) = (await env.messages.heads(["lobby"]))["lobby"]
    assert isinstance(epoch, str)  # SPEC §8
    assert conn.frames == [
        {
            "type": "hello",
            "user": "Alice",
            "rooms": [
                {
                    "name": "lobby",
                    "unread": 1,
                    "last_id": 1,
                    "mentions": 0,
                    "private": False,
                    "role": "member",
                    "epoch": epoch,
                }
            ],
        }
    ]
    assert env.chat.connection_count == 1
    await env.chat.disconnect(conn)
    assert env.chat.connection_count == 0


async def test_join_sends_history_and_who_is_online(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("Bob")
    bob_conn = await env.joined(bob)
    for i in range(3):
        await env.messages.append("lobby", "alice", f"m{i}", client_id=f"c{i}" if i else None)
    conn = await env.connect(alice)
    await env.chat.join(conn, "lobby")
    (joined,) = await conn.wait_for("joined")
    assert joined["room"] == "lobby"
    assert [m["id"] for m in joined["messages"]] == [1, 2, 3]
    assert [m["text"] for m in joined["messages"]] == ["m0", "m1", "m2"]
    assert "type" not in joined["messages"][0] and "client_id" not in joined["messages"][0]
    assert joined["messages"][1]["client_id"] == "c1"
    assert (joined["gap"], joined["missing"]) == (False, 0)
    assert joined["online"] == ["alice", "Bob"]
    await env.sync("lobby", bob_conn)
    assert presence(bob_conn)[-1] == ("alice", "online")


async def test_join_since_gives_exactly_what_was_missed(make_env) -> None:
    env = await make_env(history_size=10)
    alice = await env.user("alice")
    for i in range(25):
        await env.messages.append("lobby", "alice", f"m{i}")
    conn = await env.connect(alice)
    for since, ids, missing in [(20, range(21, 26), 0), (3, range(16, 26), 12), (25, [], 0)]:
        await env.chat.join(conn, "lobby", since)
        joined = (await conn.wait_for("joined"))[-1]
        conn.raw.clear()
        assert [m["id"] for m in joined["messages"]] == list(ids)
        assert (joined["missing"], joined["gap"]) == (missing, missing > 0)


@pytest.mark.parametrize("since", [-1, 2**53 + 1, "3", 1.5, True, [1]])
async def test_join_with_a_bad_since_is_a_bad_request(env: ChatEnv, since: object) -> None:
    conn = await env.connect(await env.user("alice"))
    with pytest.raises(BadRequestError):
        await env.chat.join(conn, "lobby", since)
    assert conn.of_type("joined") == []


async def test_send_acks_the_sender_only_and_delivers_to_every_joined_connection(
    env: ChatEnv,
) -> None:
    alice, bob, carol = [await env.user(n) for n in ("alice", "bob", "carol")]
    await env.rooms.create(carol, "elsewhere")
    a1, a2 = await env.joined(alice), await env.joined(alice)
    b1 = await env.joined(bob)
    c1 = await env.joined(carol, "elsewhere")  # not in lobby
    idle = await env.connect(bob)  # connected, joined nothing

    await env.chat.send(a1, "lobby", "hello <b>all</b>", "c-1")
    assert a1.of_type("ack") == [{"type": "ack", "client_id": "c-1", "id": 1, "room": "lobby"}]
    await env.chat.send(a1, "lobby", "no client id")
    assert a1.of_type("ack")[-1] == {"type": "ack", "client_id": None, "id": 2, "room": "lobby"}

    await env.sync("lobby", a1, a2, b1)
    for conn in (a1, a2, b1):
        messages = conn.of_type("message")
        assert [m["id"] for m in messages] == [1, 2]
        first = messages[0]
        assert (first["room"], first["user"], first["text"]) == (
            "lobby",
            "alice",
            "hello <b>all</b>",
        )
        assert first["client_id"] == "c-1" and isinstance(first["ts"], float)
        assert "client_id" not in messages[1]
    for conn in (a2, b1, c1, idle):
        assert conn.of_type("ack") == []
    assert c1.of_type("message") == [] and idle.of_type("message") == []


async def test_every_recipient_gets_the_same_bytes_object(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    conns = [await env.joined(alice), await env.joined(bob), await env.joined(bob)]
    await env.chat.send(conns[0], "lobby", "encoded once")
    await env.sync("lobby", *conns)
    frames = [conn.raw_of_type("message") for conn in conns]
    assert all(len(f) == 1 for f in frames)
    assert frames[0][0] is frames[1][0] is frames[2][0]
    # And those bytes are the stored history item plus its type.
    (item,) = (await env.messages.history("lobby")).items
    assert frames[0][0] == b'{"type":"message",' + item[1:]


async def test_concurrent_senders_are_delivered_once_each_in_id_order(env: ChatEnv) -> None:
    users = [await env.user(n) for n in ("alice", "bob", "carol", "dave")]
    conns = [await env.joined(u) for u in users]
    await asyncio.gather(
        *(
            env.chat.send(conn, "lobby", f"{conn.account.name} {i}")
            for conn in conns
            for i in range(8)
        )
    )
    await env.sync("lobby", *conns)
    for conn in conns:
        assert message_ids(conn) == list(range(1, 33))
        assert sorted(a["id"] for a in conn.of_type("ack")) == [
            m["id"] for m in conn.of_type("message") if m["user"] == conn.account.name
        ]


async def test_joining_while_messages_flow_misses_nothing_and_repeats_nothing(
    env: ChatEnv,
) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1 = await env.joined(alice)
    senders = [await env.connect(await env.user(f"sender{i}")) for i in range(5)]

    async def flood() -> None:
        for i in range(8):
            await asyncio.gather(*(env.chat.send(s, "lobby", f"{i}") for s in senders))

    late = await env.connect(bob)
    await asyncio.gather(flood(), env.chat.join(late, "lobby"))
    await env.sync("lobby", a1, late)
    (joined,) = late.of_type("joined")
    seen = [m["id"] for m in joined["messages"]] + message_ids(late)
    assert seen == list(range(1, 41))
    assert message_ids(a1) == list(range(1, 41))


async def test_leave_stops_delivery_to_that_connection_only(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1, a2, b1 = await env.joined(alice), await env.joined(alice), await env.joined(bob)
    await env.chat.leave(a1, "lobby")
    await env.chat.send(b1, "lobby", "after leave")
    await env.sync("lobby", a2, b1)
    assert message_ids(a1) == [] and message_ids(a2) == [1] and message_ids(b1) == [1]
    # Membership stays: lobby is still in alice's rooms with the message unread.
    assert without_epoch(await env.rooms.memberships(alice)) == [
        {
            "name": "lobby",
            "unread": 1,
            "last_id": 1,
            "mentions": 0,
            "private": False,
            "role": "member",
        }
    ]
    await env.chat.leave(a1, "lobby")  # leaving twice is harmless
    with pytest.raises(BadRequestError):
        await env.chat.leave(a1, "Not A Room")


async def test_a_retried_client_id_is_acked_with_the_original_id_and_not_redelivered(
    env: ChatEnv,
) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1, b1 = await env.joined(alice), await env.joined(bob)
    await env.chat.send(a1, "lobby", "once", "retry-me")
    await env.chat.send(a1, "lobby", "other")
    a_reconnected = await env.joined(alice)
    await env.chat.send(a_reconnected, "lobby", "once", "retry-me")
    assert a_reconnected.of_type("ack") == [
        {"type": "ack", "client_id": "retry-me", "id": 1, "room": "lobby"}
    ]
    # Another user's identical client_id is a different message.
    await env.chat.send(b1, "lobby", "bob's", "retry-me")
    assert b1.of_type("ack")[-1]["id"] == 3
    await env.sync("lobby", a1, b1, a_reconnected)
    assert message_ids(b1) == [1, 2, 3]
    assert message_ids(a_reconnected) == [3]
    assert [m["text"] for m in (await env.messages.history("lobby")).decoded()] == [
        "once",
        "other",
        "bob's",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "bell\x07 CRLF\r\n tab\t esc\x1b",
        "  padded  ",
        "😀👩‍👩‍👧 漢字",
        "x" * 4000,
        "😀" * 4000,
    ],
    ids=["script", "controls", "padded", "emoji", "4000", "4000-astral"],
)
async def test_text_is_relayed_verbatim(env: ChatEnv, text: str) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1, b1 = await env.joined(alice), await env.joined(bob)
    await env.chat.send(a1, "lobby", text)
    await env.sync("lobby", b1)
    assert [m["text"] for m in b1.of_type("message")] == [text]
    late = await env.joined(bob)
    assert late.of_type("joined")[0]["messages"][0]["text"] == text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", BadRequestError),
        (None, BadRequestError),
        (42, BadRequestError),
        ("nul\x00", BadRequestError),
        ("lone \ud800", BadRequestError),
        ("x" * 4001, TooLongError),
        ("😀" * 4001, TooLongError),
    ],
    ids=["empty", "none", "int", "nul", "surrogate", "4001", "4001-astral"],
)
async def test_bad_texts_are_refused_and_not_stored(
    env: ChatEnv, text: object, error: type[Exception]
) -> None:
    conn = await env.joined(await env.user("alice"))
    with pytest.raises(error):
        await env.chat.send(conn, "lobby", text)
    assert await env.messages.last_id("lobby") == 0
    assert conn.of_type("ack") == []


@pytest.mark.parametrize("client_id", ["", "x" * 65, 5, ["a"], "nul\x00"])
async def test_bad_client_ids_are_bad_requests(env: ChatEnv, client_id: object) -> None:
    conn = await env.joined(await env.user("alice"))
    with pytest.raises(BadRequestError):
        await env.chat.send(conn, "lobby", "hi", client_id)
    assert await env.messages.last_id("lobby") == 0


async def test_a_64_character_client_id_is_fine(env: ChatEnv) -> None:
    conn = await env.joined(await env.user("alice"))
    await env.chat.send(conn, "lobby", "hi", "x" * 64)
    assert conn.of_type("ack")[0]["client_id"] == "x" * 64


async def test_typing_reaches_others_never_the_typer_and_is_throttled(env: ChatEnv) -> None:
    alice, bob = await env.user("Alice"), await env.user("bob")
    a1, a2 = await env.joined(alice), await env.joined(alice)
    b1, b2 = await env.joined(bob), await env.joined(bob)
    await env.chat.typing(a1, "lobby")
    await env.chat.typing(a1, "lobby")
    await env.chat.typing(a2, "lobby")  # same user: the same throttle
    await env.sync("lobby", a1, a2, b1, b2)
    for conn in (b1, b2):
        assert conn.of_type("typing") == [{"type": "typing", "room": "lobby", "user": "Alice"}]
    for conn in (a1, a2):
        assert conn.of_type("typing") == []
    # Others are throttled separately.
    await env.chat.typing(b1, "lobby")
    await env.sync("lobby", a1, b1)
    assert a1.of_type("typing") == [{"type": "typing", "room": "lobby", "user": "bob"}]
    assert b1.of_type("typing") == [{"type": "typing", "room": "lobby", "user": "Alice"}]


async def test_typing_in_an_unknown_or_private_room(env: ChatEnv) -> None:
    await env.user("alice")
    carol = await env.connect(await env.user("carol"))
    with pytest.raises(NotFoundError):
        await env.chat.typing(carol, "nowhere")
    with pytest.raises(ForbiddenError):
        await env.chat.typing(carol, "dm:alice:bob")


async def test_presence_follows_the_last_connection(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    b1 = await env.joined(bob)
    a1 = await env.joined(alice)
    a2 = await env.joined(alice)
    await env.sync("lobby", b1)
    assert presence(b1) == [("bob", "online"), ("alice", "online")]
    assert await env.presence.online("lobby") == ["alice", "bob"]

    await env.chat.leave(a1, "lobby")
    await env.sync("lobby", b1)
    assert presence(b1) == [("bob", "online"), ("alice", "online")]
    assert await env.presence.online("lobby") == ["alice", "bob"]

    await env.chat.disconnect(a2)
    await env.sync("lobby", b1)
    assert presence(b1) == [("bob", "online"), ("alice", "online"), ("alice", "offline")]
    assert await env.presence.online("lobby") == ["bob"]

    # Back again: online once more.
    a3 = await env.joined(alice)
    assert a3.of_type("joined")[0]["online"] == ["alice", "bob"]
    await env.sync("lobby", b1)
    assert presence(b1)[-1] == ("alice", "online")


async def test_rejoining_on_the_same_connection_announces_nothing_new(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    b1 = await env.joined(bob)
    a1 = await env.joined(alice)
    await env.chat.join(a1, "lobby")
    await env.sync("lobby", b1, a1)
    assert presence(b1).count(("alice", "online")) == 1
    await env.chat.send(b1, "lobby", "once")
    await env.sync("lobby", a1)
    assert message_ids(a1) == [1]


async def test_direct_messages(env: ChatEnv) -> None:
    alice, bob, carol = [await env.user(n) for n in ("Alice", "bob", "carol")]
    room = "dm:alice:bob"
    a1 = await env.joined(alice, room)
    await env.chat.send(a1, room, "psst")
    # The first send created the room for both: bob sees it, with the message unread.
    assert {r["name"]: r["unread"] for r in await env.rooms.memberships(bob)}[room] == 1
    b1 = await env.joined(bob, room)
    assert [m["text"] for m in b1.of_type("joined")[0]["messages"]] == ["psst"]
    await env.chat.send(b1, room, "hi alice")
    await env.sync(room, a1, b1)
    assert message_ids(a1, room) == [1, 2] and message_ids(b1, room) == [2]

    c1 = await env.connect(carol)
    for call in (
        env.chat.join(c1, room),
        env.chat.send(c1, room, "let me in"),
        env.chat.typing(c1, room),
        env.chat.read(c1, room, 1),
    ):
        with pytest.raises(ForbiddenError) as caught:
            await call
        assert caught.value.code == "forbidden"
    assert c1.of_type("joined") == [] and c1.of_type("message") == []
    with pytest.raises(NotFoundError):
        await env.chat.join(c1, "dm:carol:alice")  # not sorted
    with pytest.raises(BadRequestError):
        await env.chat.join(c1, "dm:Alice:carol")  # not lowercased
    assert await env.messages.last_id(room) == 2


async def test_a_dm_can_start_with_a_send(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1 = await env.connect(alice)
    await env.chat.send(a1, "dm:alice:bob", "first contact")
    assert a1.of_type("ack")[0]["id"] == 1
    b1 = await env.connect(bob)  # a new hello lists the room
    assert {r["name"]: r["unread"] for r in b1.of_type("hello")[0]["rooms"]} == {
        "dm:alice:bob": 1,
        "lobby": 0,
    }


async def test_unknown_room(env: ChatEnv) -> None:
    conn = await env.connect(await env.user("alice"))
    for call in (
        env.chat.join(conn, "nowhere"),
        env.chat.send(conn, "nowhere", "hi"),
        env.chat.read(conn, "nowhere", 1),
    ):
        with pytest.raises(NotFoundError) as caught:
            await call
        assert caught.value.code == "not_found"
    assert await env.messages.last_id("nowhere") == 0
    assert conn.of_type("joined") == [] and conn.of_type("ack") == []


@pytest.mark.parametrize("room", ["", "Lobby", "lobby\n", "has space", "a" * 65, None, 3])
async def test_malformed_room_names_are_bad_requests(env: ChatEnv, room: object) -> None:
    conn = await env.connect(await env.user("alice"))
    for call in (env.chat.join(conn, room), env.chat.send(conn, room, "hi")):
        with pytest.raises(BadRequestError):
            await call


async def test_rate_limit_allows_a_burst_of_ten(env: ChatEnv) -> None:
    conn = await env.joined(await env.user("alice"))
    for i in range(10):
        await env.chat.send(conn, "lobby", f"m{i}")
    with pytest.raises(RateLimitedError) as caught:
        await env.chat.send(conn, "lobby", "one too many", "c-11")
    assert caught.value.code == "rate_limited"
    assert 0 < caught.value.retry_after <= 0.5 + 0.01
    assert await env.messages.last_id("lobby") == 10
    assert conn.closed is None


async def test_rate_limit_is_per_user_across_connections(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a1, a2, b1 = await env.joined(alice), await env.joined(alice), await env.joined(bob)
    for i in range(10):
        await env.chat.send(a1 if i % 2 else a2, "lobby", f"m{i}")
    with pytest.raises(RateLimitedError):
        await env.chat.send(a1, "lobby", "no")
    with pytest.raises(RateLimitedError):
        await env.chat.send(a2, "lobby", "no")
    await env.chat.send(b1, "lobby", "bob has his own bucket")


async def test_a_client_that_waits_retry_after_is_served_and_never_closed(
    env: ChatEnv,
) -> None:
    conn = await env.joined(await env.user("alice"))
    for i in range(10):
        await env.chat.send(conn, "lobby", f"m{i}")
    for _ in range(2):
        with pytest.raises(RateLimitedError) as caught:
            await env.chat.send(conn, "lobby", "too soon")
        await asyncio.sleep(caught.value.retry_after + 0.02)
        await env.chat.send(conn, "lobby", "waited")
    assert conn.closed is None
    assert await env.messages.last_id("lobby") == 12


async def test_ignoring_retry_after_twenty_times_closes_with_1008(env: ChatEnv) -> None:
    assert MAX_IGNORED_RETRIES == 20
    conn = await env.joined(await env.user("alice"))
    other = await env.joined(conn.account)
    for i in range(10):
        await env.chat.send(conn, "lobby", f"m{i}")
    with pytest.raises(RateLimitedError):
        await env.chat.send(conn, "lobby", "refused: not yet ignoring")
    for _ in range(19):
        with pytest.raises(RateLimitedError):
            await env.chat.send(conn, "lobby", "ignoring retry_after")
    assert conn.closed is None
    with pytest.raises(RateLimitedError):
        await env.chat.send(conn, "lobby", "the twentieth")
    assert conn.closed is not None and conn.closed[0] == 1008
    assert other.closed is None
    assert await env.messages.last_id("lobby") == 10


async def test_rate_limit_settings_are_honoured(make_env) -> None:
    env = await make_env(limits=SendLimits(max_chars=5, burst=2, per_second=1.0))
    conn = await env.joined(await env.user("alice"))
    with pytest.raises(TooLongError):
        await env.chat.send(conn, "lobby", "123456")
    await env.chat.send(conn, "lobby", "12345")
    await env.chat.send(conn, "lobby", "ok")
    with pytest.raises(RateLimitedError) as caught:
        await env.chat.send(conn, "lobby", "no")
    assert 0.5 < caught.value.retry_after <= 1.0


async def test_read_markers_give_exact_unread_counts(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "general")
    a1 = await env.joined(alice, "general")
    for i in range(5):
        await env.chat.send(a1, "general", f"m{i}")
    b1 = await env.joined(bob, "general")  # a new member: nothing unread

    async def unread(account) -> tuple[int, int]:
        hello = {r["name"]: r["unread"] for r in await env.rooms.memberships(account)}
        listed = {r.name: r.unread for r in await env.rooms.list_rooms(account)}
        return hello["general"], listed["general"]

    assert await unread(bob) == (0, 0)
    assert await unread(alice) == (5, 5)
    for i in range(3):
        await env.chat.send(a1, "general", f"n{i}")
    assert await unread(bob) == (3, 3)
    await env.chat.read(b1, "general", 6)
    assert await unread(bob) == (2, 2)
    await env.chat.read(b1, "general", 1)  # never backwards
    assert await unread(bob) == (2, 2)
    await env.chat.read(a1, "general", 8)
    assert await unread(alice) == (0, 0)
    await env.chat.read(b1, "general", 10**6)  # clamped to the newest id
    assert await unread(bob) == (0, 0)
    await env.chat.send(a1, "general", "later")
    assert await unread(bob) == (1, 1)
    for bad in (-1, "3", 1.0, None, True):
        with pytest.raises(BadRequestError):
            await env.chat.read(b1, "general", bad)


async def test_listener_delivers_across_processes(make_env) -> None:
    """Two controller sets on one Redis behave as one server."""
    one, two = await make_env(), await make_env()
    alice, bob = await one.user("alice"), await one.user("bob")
    a1 = await one.joined(alice)
    b2 = await two.joined(bob)
    await two.sync("lobby", a1)
    assert presence(a1) == [("alice", "online"), ("bob", "online")]
    await one.chat.send(a1, "lobby", "from process one")
    await two.chat.send(b2, "lobby", "from process two")
    await one.sync("lobby", a1, b2)
    assert message_ids(a1) == message_ids(b2) == [1, 2]
    await two.chat.typing(b2, "lobby")
    await one.sync("lobby", a1, b2)
    assert len(a1.of_type("typing")) == 1 and b2.of_type("typing") == []


async def test_storage_down_is_unavailable(env: ChatEnv, tmp_path) -> None:
    alice = await env.user("alice")
    dead = make_redis(f"unix://{tmp_path}/no-redis-here.sock")
    try:
        keys = RedisKeys()
        messages = MessageRepository(dead, keys, 100)
        rooms = RoomController(env.run, messages)
        chat = ChatController(rooms, messages, PresenceRepository(dead, keys))
        conn = RecordingConnection(alice)
        with pytest.raises(UnavailableError):
            await chat.connect(conn)
        with pytest.raises(UnavailableError) as caught:
            await chat.send(conn, "lobby", "lost?")
        assert caught.value.code == "unavailable"
        with pytest.raises(UnavailableError):
            await rooms.list_rooms(alice)
        assert conn.of_type("ack") == []
    finally:
        await dead.aclose()
        await dead.connection_pool.disconnect()


async def test_close_all(env: ChatEnv) -> None:
    conns = [await env.joined(await env.user(n)) for n in ("alice", "bob")]
    env.chat.close_all(1001, "server shutting down")
    assert [c.closed for c in conns] == [(1001, "server shutting down")] * 2


async def test_waiting_exactly_the_advertised_retry_after_always_finds_a_token(
    make_env,
) -> None:
    """The client sees ``retry_after`` as the ``error`` frame encodes it (milliseconds);
    waiting exactly that long must be enough (fast limits keep the test short)."""
    env = await make_env(limits=SendLimits(burst=1, per_second=50.0))
    conn = await env.joined(await env.user("alice"))
    refused_after_waiting = refusals = 0
    waited = False
    for i in range(60):
        try:
            await env.chat.send(conn, "lobby", f"m{i}")
            waited = False
        except RateLimitedError as exc:
            refusals += 1
            refused_after_waiting += waited
            advertised = orjson.loads(frames.error(exc))["retry_after"]
            assert advertised >= exc.retry_after > 0
            await asyncio.sleep(advertised)
            waited = True
    assert refusals >= 5
    assert refused_after_waiting == 0
    assert conn.closed is None


async def test_a_connection_closed_while_its_join_looks_up_the_room(env: ChatEnv) -> None:
    alice = await env.user("alice")
    conn = await env.connect(alice)
    join = asyncio.create_task(env.chat.join(conn, "lobby"))
    await asyncio.sleep(0)  # the join is waiting for the database
    await env.chat.disconnect(conn)
    await asyncio.wait_for(join, FRAME_TIMEOUT)
    assert await env.presence.online("lobby") == []
    assert env.chat.connection_count == 0


class PausingPresence(PresenceRepository):
    """The real presence repository, but ``pause_in`` waits for ``resume`` first, so a
    test can close a connection at an exact point of its join."""

    pause_in = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def _gate(self, name: str) -> None:
        if self.pause_in == name:
            self.pause_in = ""
            self.paused.set()
            await self.resume.wait()

    async def enter(self, room: str, user: str, conn_id: str) -> bool:
        await self._gate("enter")
        return await super().enter(room, user, conn_id)

    async def online(self, room: str) -> list[str]:
        await self._gate("online")
        return await super().online(room)


@pytest.mark.parametrize("pause_in", ["enter", "online"])
async def test_a_connection_closed_mid_join_does_not_stay_online(make_env, pause_in) -> None:
    env = await make_env(presence=PausingPresence)
    alice, bob = await env.user("alice"), await env.user("bob")
    b1 = await env.joined(bob)
    conn = await env.connect(alice)
    env.presence.pause_in = pause_in
    join = asyncio.create_task(env.chat.join(conn, "lobby"))
    await asyncio.wait_for(env.presence.paused.wait(), FRAME_TIMEOUT)
    await env.chat.disconnect(conn)
    env.presence.resume.set()
    await asyncio.wait_for(join, FRAME_TIMEOUT)
    await env.sync("lobby", b1)
    assert presence(b1) in ([("bob", "online")], [("bob", "online"), ("alice", "offline")])
    assert await env.presence.online("lobby") == ["bob"]
    # Nothing is delivered to the closed connection.
    await env.chat.send(b1, "lobby", "anyone?")
    await env.sync("lobby", b1)
    assert [f["type"] for f in conn.frames] == ["hello"]


@pytest.mark.parametrize("yields", range(30))
async def test_closing_at_any_point_of_a_join_leaves_nobody_online(
    env: ChatEnv, yields: int
) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    b1 = await env.joined(bob)
    await env.chat.disconnect(await env.joined(alice))  # the room check is cached now
    conn = await env.connect(alice)
    join = asyncio.create_task(env.chat.join(conn, "lobby"))
    for _ in range(yields):
        await asyncio.sleep(0)
    await env.chat.disconnect(conn)
    await asyncio.wait_for(join, FRAME_TIMEOUT)
    await env.sync("lobby", b1)
    assert presence(b1)[-1] == ("alice", "offline"), presence(b1)
    assert await env.presence.online("lobby") == ["bob"]


async def test_a_send_in_flight_when_the_connection_closes(env: ChatEnv) -> None:
    alice = await env.user("alice")
    conn = await env.connect(alice)
    send = asyncio.create_task(env.chat.send(conn, "lobby", "last words", "c1"))
    await asyncio.sleep(0)  # the send is checking the room in the database
    await env.chat.disconnect(conn)
    await asyncio.wait_for(send, FRAME_TIMEOUT)
    # Stored at most once; a retry with the same client_id gets the same id.
    retry = await env.connect(alice)
    await env.chat.send(retry, "lobby", "last words", "c1")
    assert retry.of_type("ack")[0]["id"] == 1
    assert await env.messages.last_id("lobby") == 1
