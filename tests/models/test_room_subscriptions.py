"""[issue 17] Per-room channels on one Redis (models/room_subscriptions.py), against a
real redis-server: a room's events reach only the processes that subscribed to its
channel, a confirmed subscription sees everything published after it, a lost
connection brings every room back ``again``, and quick want/unwant churn ends in
the state last asked for."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from chatroom.models import RedisKeys
from chatroom.models.events import EventBus, encode_envelope
from chatroom.models.room_subscriptions import RoomSubscriptions
from chatroom.models.wanted_rooms import Subscribed

TIMEOUT = 5.0
KEYS = RedisKeys()


def wanting(client: aioredis.Redis, *rooms: str) -> tuple[EventBus, RoomSubscriptions]:
    """A per-room bus on ``client`` and its subscriptions, ``rooms`` wanted already."""
    bus = EventBus(client, KEYS, per_room=True)
    subs = RoomSubscriptions(bus)
    for room in rooms:
        subs.want(room)
    return bus, subs


async def subscribers(client: aioredis.Redis, room: str) -> int:
    """How many connections Redis counts on ``room``'s channel."""
    [(_channel, count)] = await client.pubsub_numsub(KEYS.room_events(room))
    return count


async def next_item(items):
    return await asyncio.wait_for(anext(items), TIMEOUT)


async def test_only_wanted_rooms_arrive_and_the_one_channel_carries_none(
    redis_client: aioredis.Redis,
) -> None:
    bus, subs = wanting(redis_client, "lobby")
    assert bus.room_channel("lobby") == KEYS.room_events("lobby") != bus.channel
    async with subs.running() as items:
        assert await next_item(items) == Subscribed("lobby", False)
        await subs.ready("lobby")
        assert subs.subscribed() == {"lobby"}
        assert await subscribers(redis_client, "lobby") == 1
        assert await subscribers(redis_client, "quiet") == 0
        await bus.publish("quiet", b'{"n":0}')  # nobody here wants it: never read
        await bus.publish("lobby", b'{"n":1}')
        event = await next_item(items)
        assert (event.room, event.frame) == ("lobby", b'{"n":1}')
        # The one channel is for control events: a room's event never goes there.
        [(_channel, count)] = await redis_client.pubsub_numsub(bus.channel)
        assert count == 0


async def test_many_rooms_at_once_are_confirmed_each_and_unwanted_ones_leave(
    redis_client: aioredis.Redis,
) -> None:
    bus, subs = wanting(redis_client)
    rooms = [f"room{n}" for n in range(200)]
    async with subs.running() as items:
        for room in rooms:
            subs.want(room)
        confirmed = {(await next_item(items)).room for _ in rooms}
        assert confirmed == set(rooms)
        for room in rooms[:150]:
            subs.unwant(room)
        # Events of the rooms still wanted keep coming, in publish order.
        for room in rooms[::10]:
            await bus.publish(room, room.encode())
        got = [await next_item(items) for _ in rooms[150::10]]
        assert [e.room for e in got] == rooms[150::10]
        assert subs.subscribed() == set(rooms[150:])
        assert await subscribers(redis_client, "room0") == 0
        assert await subscribers(redis_client, "room199") == 1


async def test_want_unwant_churn_ends_as_last_asked(redis_client: aioredis.Redis) -> None:
    """A page reload's leave and join of a room, and the reverse, many times between
    the background passes: the subscription ends as the last call asked, and a room
    wanted again after its UNSUBSCRIBE went out is confirmed again before it counts.
    (As in ``RoomChannels.run``, a task reads the stream all along: confirmations
    are read from it.)"""
    bus, subs = wanting(redis_client)
    read: list = []
    async with subs.running() as items:

        async def reader() -> None:
            async for item in items:
                read.append(item)

        task = asyncio.create_task(reader())
        try:
            subs.want("lobby")
            await asyncio.wait_for(subs.ready("lobby"), TIMEOUT)
            for n in range(50):
                subs.unwant("lobby")
                await asyncio.sleep(0.001 * (n % 3))
                subs.want("lobby")
                await asyncio.sleep(0.001 * (n % 2))
            await asyncio.wait_for(subs.ready("lobby"), TIMEOUT)
            await bus.publish("lobby", b"after")
            for _ in range(250):
                if any(getattr(item, "frame", None) == b"after" for item in read):
                    break
                await asyncio.sleep(0.02)
            assert [item.frame for item in read if not isinstance(item, Subscribed)] == [b"after"]
            assert await subscribers(redis_client, "lobby") == 1
            subs.unwant("lobby")
            for _ in range(250):
                if await subscribers(redis_client, "lobby") == 0:
                    break
                await asyncio.sleep(0.02)
            assert await subscribers(redis_client, "lobby") == 0
            assert subs.subscribed() == set()
        finally:
            task.cancel()


async def test_a_lost_connection_ends_the_stream_and_every_room_comes_back_again(
    redis_client: aioredis.Redis,
) -> None:
    bus, subs = wanting(redis_client, "a", "b")
    async with subs.running() as items:
        assert {(await next_item(items)).room for _ in "ab"} == {"a", "b"}
        assert await redis_client.client_kill_filter(_type="pubsub") == 1
        with pytest.raises(RedisConnectionError):
            await next_item(items)
    assert subs.subscribed() == set()
    async with subs.running() as items:
        again = {await next_item(items) for _ in "ab"}
        assert again == {Subscribed("a", True), Subscribed("b", True)}
        await bus.publish("b", b"back")
        assert (await next_item(items)).frame == b"back"


async def test_a_malformed_payload_on_a_room_channel_is_skipped(
    redis_client: aioredis.Redis,
) -> None:
    bus, subs = wanting(redis_client, "lobby")
    async with subs.running() as items:
        await next_item(items)
        await redis_client.publish(bus.room_channel("lobby"), b"not an envelope")
        await redis_client.publish(
            bus.room_channel("lobby"), encode_envelope("lobby", 7, "", b"{}")
        )
        event = await next_item(items)
        assert (event.room, event.message_id) == ("lobby", 7)
