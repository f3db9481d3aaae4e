"""[issue 17] The event subscription's own read loop (models/pubsub_read.py), against a
real redis-server: bursts and large events arrive whole and in order, a dropped
connection ends the stream with redis-py's error, and without the hiredis reader it
reads with ``get_message``."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from chatroom.models import RedisKeys
from chatroom.models.events import EventBus
from chatroom.models.pubsub_read import _hiredis_source, replies

EVENT_TIMEOUT = 5.0


async def test_a_burst_and_large_events_arrive_whole_and_in_order(
    redis_client: aioredis.Redis,
) -> None:
    pubsub = redis_client.pubsub()  # the served client is read below get_message
    await pubsub.subscribe("ch")
    assert (await pubsub.get_message(timeout=EVENT_TIMEOUT))["type"] == "subscribe"
    assert _hiredis_source(pubsub) is not None
    await pubsub.aclose()
    bus = EventBus(redis_client, RedisKeys())
    # Many events in one socket read, and events larger than one read (64 KiB).
    frames = [b'{"n":%d,"pad":"%s"}' % (n, b"x" * (n * 997 % 150_000)) for n in range(300)]
    async with bus.subscribe() as events:
        async with redis_client.pipeline(transaction=False) as pipe:
            for n, frame in enumerate(frames):
                pipe.publish(bus.channel, b"room%d\n%d\n\n%s" % (n % 3, n + 1, frame))
            pipe.publish(bus.channel, b"not an envelope")  # skipped, not fatal
            pipe.publish(bus.channel, b"last\n\n\n{}")
            await pipe.execute()
        received = [await asyncio.wait_for(anext(events), EVENT_TIMEOUT) for _ in range(301)]
    assert [e.frame for e in received[:300]] == frames
    assert [e.message_id for e in received[:300]] == list(range(1, 301))
    assert received[-1].room == "last"


async def test_a_dropped_subscription_ends_the_stream(redis_client: aioredis.Redis) -> None:
    """As with ``get_message``: the listener sees the drop, subscribes again and
    recovers what was published meanwhile from the history."""
    bus = EventBus(redis_client, RedisKeys())
    async with bus.subscribe() as events:
        await bus.publish("lobby", b"{}")
        assert (await asyncio.wait_for(anext(events), EVENT_TIMEOUT)).room == "lobby"
        assert await redis_client.client_kill_filter(_type="pubsub") == 1
        await bus.publish("lobby", b"{}")
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(anext(events), EVENT_TIMEOUT)


async def test_without_the_hiredis_reader_it_reads_with_get_message(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, health_check_interval=30)  # pings to send
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe("ch")
        assert (await pubsub.get_message(timeout=EVENT_TIMEOUT))["type"] == "subscribe"
        assert _hiredis_source(pubsub) is None
        await client.publish("ch", b"one")
        stream = replies(pubsub)
        reply = await asyncio.wait_for(anext(stream), EVENT_TIMEOUT)
        assert reply == [b"message", b"ch", b"one"]
        await stream.aclose()
    finally:
        await pubsub.aclose()
        await client.aclose()


@pytest.mark.parametrize(
    "options",
    [{}, {"protocol": 2}, {"health_check_interval": 30}],
    ids=["hiredis", "hiredis-resp2", "get_message"],
)
async def test_a_pong_is_skipped_and_an_error_reply_raised(redis_url: str, options) -> None:
    """A subscribed connection's pong (``PONG``, in RESP2 ``[b"pong", b""]``) is no
    reply of the stream; an error reply (in a Cluster: ``MOVED``, the answer to an
    ``SSUBSCRIBE`` sent with a stale slot table) is raised, as ``get_message`` raises
    it, not waited past."""
    client = aioredis.Redis.from_url(redis_url, **options)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe("ch")
        assert (await pubsub.get_message(timeout=EVENT_TIMEOUT))["type"] == "subscribe"
        assert (_hiredis_source(pubsub) is None) == ("health_check_interval" in options)
        stream = replies(pubsub)
        await pubsub.ping()
        await client.publish("ch", b"one")
        assert await asyncio.wait_for(anext(stream), EVENT_TIMEOUT) == [b"message", b"ch", b"one"]
        await pubsub.execute_command("SUBSCRIBE")  # refused: no channel
        with pytest.raises(ResponseError, match="wrong number of arguments"):
            await asyncio.wait_for(anext(stream), EVENT_TIMEOUT)
    finally:
        await pubsub.aclose()
        await client.aclose()
