"""MessageRepository against a real redis-server: ids, trimming, recovery, dedupe, pub/sub."""

from __future__ import annotations

import asyncio
import itertools

import orjson
import pytest
import redis.asyncio as aioredis

from chatroom.models import MessageRepository, RedisKeys
from chatroom.models.epochs import EPOCH_FRAME_PREFIX
from chatroom.models.events import Event

#: Every wait on Redis pub/sub is bounded: a lost event fails the test fast.
EVENT_TIMEOUT = 5.0


def ids(page) -> list[int]:
    return [item["id"] for item in page.decoded()]


async def next_event(events) -> Event:
    """The next event that is not an ``epoch`` announcement (a room's first message
    starts its epoch, SPEC §8: tests/test_epochs.py looks at those)."""
    while True:
        event = await asyncio.wait_for(anext(events), EVENT_TIMEOUT)
        if not event.frame.startswith(EPOCH_FRAME_PREFIX):
            return event


async def no_event(events, wait: float = 0.2) -> None:
    with pytest.raises(asyncio.TimeoutError):
        event = await asyncio.wait_for(anext(events), wait)
        pytest.fail(f"unexpected event {event}")


async def test_ids_are_dense_from_one(messages: MessageRepository) -> None:
    stored = [await messages.append("lobby", "alice", f"m{i}") for i in range(1, 11)]
    assert [s.id for s in stored] == list(range(1, 11))
    assert all(s.created for s in stored)
    assert await messages.last_id("lobby") == 10
    assert ids(await messages.history("lobby")) == list(range(1, 11))


async def test_rooms_count_independently(messages: MessageRepository) -> None:
    await messages.append("lobby", "alice", "a")
    await messages.append("lobby", "alice", "b")
    assert (await messages.append("other", "alice", "c")).id == 1
    assert (await messages.append("dm:alice:bob", "alice", "d")).id == 1
    assert (await messages.append("lobby", "alice", "e")).id == 3


async def test_history_of_an_empty_room(messages: MessageRepository) -> None:
    page = await messages.history("nothing-here")
    assert (page.items, page.last_id, page.missing, page.gap) == ([], 0, 0, False)
    page = await messages.history("nothing-here", since=0)
    assert (page.items, page.missing, page.gap) == ([], 0, False)


@pytest.mark.parametrize(("history_size", "appended"), [(100, 150), (1, 5), (7, 7), (7, 8)])
async def test_history_is_trimmed_to_exactly_history_size(
    redis_client: aioredis.Redis, history_size: int, appended: int
) -> None:
    messages = MessageRepository(redis_client, RedisKeys(), history_size)
    # Everything is archived (SPEC §7): nothing above history_size need stay in Redis.
    await redis_client.set(RedisKeys().archived("lobby"), 10**9)
    for i in range(1, appended + 1):
        await messages.append("lobby", "alice", f"m{i}")
    page = await messages.history("lobby")
    first = max(1, appended - history_size + 1)
    assert ids(page) == list(range(first, appended + 1))
    assert [m["text"] for m in page.decoded()] == [f"m{i}" for i in range(first, appended + 1)]
    assert page.last_id == appended
    assert (page.missing, page.gap) == (0, False)
    assert await redis_client.llen(RedisKeys().log("lobby")) == min(history_size, appended)


@pytest.fixture
async def trimmed(messages: MessageRepository) -> MessageRepository:
    """history_size 100 and 150 messages: 51..150 retained, 1..50 gone."""
    for i in range(1, 151):
        await messages.append("lobby", "alice", f"m{i}")
    return messages


@pytest.mark.parametrize("since", [0, 1, 10, 48, 49, 50, 51, 60, 100, 149])
async def test_history_since_is_exact(trimmed: MessageRepository, since: int) -> None:
    page = await trimmed.history("lobby", since=since)
    oldest = 51
    assert ids(page) == list(range(max(since + 1, oldest), 151))
    assert page.missing == max(0, oldest - 1 - since)
    assert page.gap is (page.missing > 0)
    assert page.last_id == 150


@pytest.mark.parametrize("since", [150, 151, 10_000, 2**53])
async def test_history_since_at_or_past_the_newest_is_empty(
    trimmed: MessageRepository, since: int
) -> None:
    page = await trimmed.history("lobby", since=since)
    assert (page.items, page.missing, page.gap) == ([], 0, False)


async def test_history_items_are_message_frames_without_type(
    messages: MessageRepository,
) -> None:
    await messages.append("lobby", "Alice", "hello", client_id="c-1")
    await messages.append("lobby", "bob", "plain")
    first, second = (await messages.history("lobby")).decoded()
    assert set(first) == {"room", "id", "user", "text", "ts", "client_id", "rev"}
    assert (first["room"], first["id"], first["user"], first["text"]) == (
        "lobby",
        1,
        "Alice",
        "hello",
    )
    assert first["client_id"] == "c-1"
    assert isinstance(first["ts"], float)
    assert set(second) == {"room", "id", "user", "text", "ts", "rev"}


async def test_client_id_dedupe_returns_the_original_id(messages: MessageRepository) -> None:
    original = await messages.append("lobby", "alice", "first try", client_id="c1")
    retry = await messages.append("lobby", "alice", "first try (retried)", client_id="c1")
    assert (original.id, original.created) == (1, True)
    assert (retry.id, retry.created) == (1, False)
    # The user is case-insensitive: the same account retrying under another spelling.
    assert (await messages.append("lobby", "ALICE", "again", client_id="c1")).created is False
    page = await messages.history("lobby")
    assert [m["text"] for m in page.decoded()] == ["first try"]
    assert page.last_id == 1


async def test_client_id_is_scoped_to_the_user_and_the_room(
    messages: MessageRepository,
) -> None:
    await messages.append("lobby", "alice", "from alice", client_id="c1")
    bob = await messages.append("lobby", "bob", "from bob", client_id="c1")
    elsewhere = await messages.append("other", "alice", "elsewhere", client_id="c1")
    assert (bob.id, bob.created) == (2, True)
    assert (elsewhere.id, elsewhere.created) == (1, True)
    assert [m["user"] for m in (await messages.history("lobby")).decoded()] == ["alice", "bob"]
    # Without a client_id nothing is deduplicated.
    plain = [await messages.append("lobby", "alice", "same") for _ in range(2)]
    assert [(s.id, s.created) for s in plain] == [(3, True), (4, True)]


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "&amp; &lt; \"quoted\" 'single' \\backslash",
        "emoji 😀👩‍👩‍👧 and CJK 漢字",
        "bell \x07 tab \t CRLF \r\n escape \x1b[31m del \x7f",
        "  leading and trailing spaces  \n",
        "\u2028\u2029 line separators",
        "x" * 4000,
        "😀" * 4000,
    ],
    ids=[
        "script",
        "img",
        "entities",
        "emoji",
        "controls",
        "spaces",
        "separators",
        "4000",
        "4000-astral",
    ],
)
async def test_text_is_stored_verbatim(messages: MessageRepository, text: str) -> None:
    await messages.append("lobby", "alice", text)
    page = await messages.history("lobby")
    (item,) = page.decoded()
    assert item["text"] == text
    if "<" in text:
        # JSON-escaped only, never HTML-escaped.
        assert text.split(">")[0].encode() in page.items[0]


async def test_concurrent_appends_get_each_id_once(messages: MessageRepository) -> None:
    users = itertools.cycle(["alice", "bob", "carol", "dave", "erin"])
    results = await asyncio.gather(
        *(messages.append("lobby", next(users), f"m{i}", client_id=f"c{i}") for i in range(200))
    )
    assert sorted(r.id for r in results) == list(range(1, 201))
    assert all(r.created for r in results)
    page = await messages.history("lobby")
    # history_size is 100: exactly the newest 100, in id order, each text once.
    assert ids(page) == list(range(101, 201))
    texts = [m["text"] for m in page.decoded()]
    assert len(set(texts)) == 100
    by_id = {r.id: f"m{i}" for i, r in enumerate(results)}
    assert texts == [by_id[i] for i in range(101, 201)]


async def test_subscribe_delivers_appends_in_id_order(messages: MessageRepository) -> None:
    async with messages.events.subscribe() as events:
        for i in range(1, 21):
            await messages.append("lobby", "alice", f"m{i}", client_id=f"c{i}")
        await messages.append("other", "bob", "elsewhere")
        received = [await next_event(events) for _ in range(21)]
        stored = (await messages.history("lobby")).items
        await events.aclose()
    lobby = [e for e in received if e.room == "lobby"]
    assert [e.message_id for e in lobby] == list(range(1, 21))
    for event, item in zip(lobby, stored, strict=True):
        assert event.exclude_user == ""
        frame = orjson.loads(event.frame)
        assert frame["type"] == "message"
        # The published frame is the stored item plus its type: encoded once.
        assert {k: v for k, v in frame.items() if k != "type"} == orjson.loads(item)
        assert event.frame == b'{"type":"message",' + item[1:]
    (other,) = [e for e in received if e.room == "other"]
    assert other.message_id == 1
    assert orjson.loads(other.frame)["text"] == "elsewhere"


async def test_a_deduplicated_retry_is_not_published(messages: MessageRepository) -> None:
    async with messages.events.subscribe() as events:
        await messages.append("lobby", "alice", "once", client_id="c1")
        assert (await next_event(events)).message_id == 1
        assert (await messages.append("lobby", "alice", "once", client_id="c1")).created is False
        await no_event(events)
        await events.aclose()


async def test_publish_carries_non_message_events(messages: MessageRepository) -> None:
    frame = b'{"type":"typing","room":"lobby","user":"Alice"}'
    async with messages.events.subscribe() as events:
        await messages.events.publish("lobby", frame, exclude_user="Alice")
        event = await next_event(events)
        await events.aclose()
    assert event == Event(room="lobby", message_id=0, exclude_user="alice", frame=frame)


async def test_last_ids(messages: MessageRepository) -> None:
    for _ in range(3):
        await messages.append("lobby", "alice", "x")
    await messages.append("dm:alice:bob", "bob", "y")
    assert await messages.last_ids(["lobby", "dm:alice:bob", "empty"]) == {
        "lobby": 3,
        "dm:alice:bob": 1,
        "empty": 0,
    }
    assert await messages.last_ids([]) == {}
    assert await messages.last_id("empty") == 0
