"""[issue 12] Edits, deletes and reactions published while a process's Redis subscription
was down reach its sockets once it resubscribes (``deleted`` and ``updated`` frames), so a
client that stayed connected ends with what a fresh join shows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from tests.helpers import ChatClient
from tests.views.test_message_catchup import FAST, fresh, state_of
from tests.views.test_message_changes import change, posted

pytestmark = pytest.mark.timeout(90)


def applied(state: dict[int, dict], frame: dict) -> None:
    """Apply one live frame to a client's copy of the room, as static/js/room.js does."""
    kind = frame["type"]
    if kind == "message":
        state[frame["id"]] = {k: v for k, v in frame.items() if k != "type"}
    elif kind == "updated":
        state[frame["message"]["id"]] = frame["message"]
    elif kind == "deleted":
        old = state[frame["id"]]
        state[frame["id"]] = {
            **{k: old[k] for k in ("room", "id", "user", "ts")},
            "text": "",
            "deleted": True,
            "rev": frame["rev"],
        }
    elif kind == "edited":
        state[frame["id"]] = {
            **state[frame["id"]],
            "text": frame["text"],
            "edited": frame["edited"],
        }
        state[frame["id"]]["rev"] = frame["rev"]
    elif kind == "reaction":
        item = state[frame["id"]]
        users = item.setdefault("reactions", {}).setdefault(frame["emoji"], [])
        if frame["on"] and frame["user"] not in users:
            users.append(frame["user"])
        elif not frame["on"] and frame["user"] in users:
            users.remove(frame["user"])
        item["reactions"] = {e: u for e, u in item["reactions"].items() if u}
        if not item["reactions"]:
            del item["reactions"]
        item["rev"] = frame["rev"]


async def frames_until(client: ChatClient, marker: str) -> list[dict]:
    """Every frame up to (and with) the message whose text is ``marker``."""
    got = []
    while True:
        frame = await client.read_frame()
        assert frame is not None, got
        got.append(frame)
        if frame["type"] == "message" and frame["text"] == marker:
            return got


def hold_subscription(hub, monkeypatch) -> tuple[asyncio.Event, Callable[[], bool]]:
    """Hold ``hub``'s subscription to the room's events between its connections until
    the returned gate is set; also returns whether that subscription is up now.

    With one channel that is the hub's listener; with channels per room (issue 17)
    the rooms' subscriptions (``RoomSubscriptions.running``)."""
    gate = asyncio.Event()
    if hub.channels is None:
        listen = hub._listen

        async def gated(reconnect):
            await gate.wait()
            await listen(reconnect)

        monkeypatch.setattr(hub, "_listen", gated)
        return gate, hub.listening.is_set
    subscriptions = hub.channels._subscriptions
    running = subscriptions.running

    @contextlib.asynccontextmanager
    async def gated_rooms():
        await gate.wait()
        async with running() as items:
            yield items

    monkeypatch.setattr(subscriptions, "running", gated_rooms)
    return gate, lambda: "lobby" in subscriptions.subscribed()


@pytest.mark.parametrize("channels", ["rooms", "one"])
async def test_changes_missed_while_unsubscribed_are_sent_after_the_resubscribe(
    app_factory, redis_url, monkeypatch, channels
):
    first = await app_factory(**FAST, pubsub_channels=channels)
    second = await app_factory(**FAST, pubsub_channels=channels)
    alice = await first.client("alice")
    bob = await second.client("bob")
    ids = [(await posted(alice, f"m{i}"))["id"] for i in range(4)]
    for _ in ids:
        await bob.next("message")
    before = state_of(await fresh(second, "carol"))

    # Hold the second process's subscription between its connections while alice changes.
    hub = second.server.chat._hub
    gate, subscribed = hold_subscription(hub, monkeypatch)
    redis = aioredis.from_url(redis_url)
    try:
        await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await redis.aclose()
    for _ in range(100):
        if not subscribed():
            break
        await asyncio.sleep(0.05)
    assert not subscribed()

    edit = {"type": "edit", "room": "lobby", "id": ids[0], "text": "m0!", "client_id": "e"}
    assert (await change(alice, edit))["type"] == "ack"
    delete = {"type": "delete", "room": "lobby", "id": ids[1], "client_id": "d"}
    assert (await change(alice, delete))["type"] == "ack"
    for n, emoji in enumerate(("👍", "🎉", "👍")):
        react = {"type": "react", "room": "lobby", "id": ids[2], "emoji": emoji}
        assert (await change(alice, {**react, "on": n < 2, "client_id": f"r{n}"}))["type"] == "ack"
    react = {"type": "react", "room": "lobby", "id": ids[3], "emoji": "👀", "on": True}
    assert (await change(alice, {**react, "client_id": "r3"}))["type"] == "ack"
    new = await posted(alice, "while the subscription was down")
    await change(alice, {**edit, "id": new["id"], "text": "edited new", "client_id": "e2"})

    gate.set()
    for _ in range(200):
        if subscribed():
            break
        await asyncio.sleep(0.05)
    await posted(alice, "done")
    got = await frames_until(bob, "done")
    kinds = [f["type"] for f in got]
    assert kinds.count("updated") == 3 and kinds.count("deleted") == 1, kinds
    state = dict(before)
    for frame in got:
        applied(state, frame)
    now = state_of(await fresh(second, "dave"))
    assert state == now
    assert now[ids[2]]["reactions"] == {"🎉": ["alice"]}
    assert now[new["id"]]["text"] == "edited new"
    # The live stream goes on as before after the recovery.
    await change(alice, {**edit, "text": "again", "client_id": "e3"})
    assert (await bob.next("edited"))["text"] == "again"
