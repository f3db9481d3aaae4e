"""[issue 12] Change events that the pub/sub subscription drops without a resubscribe
(redis-py reconnecting by itself) are noticed by the jump in the room's ``rev`` and
resent from Redis, in rev order, before the event that showed the jump; change frames
that the resent state already contains are not applied again on top of it."""

from __future__ import annotations

import pytest

from chatroom.controllers import SendLimits
from chatroom.models.events import Event, EventBus
from chatroom.models.room_subscriptions import RoomSubscriptions

pytestmark = pytest.mark.timeout(60)

FAST = SendLimits(burst=100_000, per_second=1000)


@pytest.fixture
def dropped(monkeypatch) -> list[bytes]:
    """Events whose frame starts with one of these prefixes are dropped (once each)
    between Redis and the listener, as a silent reconnect would lose them: on the one
    channel and (issue 17, the default) on the rooms' own channels."""
    prefixes: list[bytes] = []

    def lost(item) -> bool:
        if not isinstance(item, Event):
            return False
        hit = next((p for p in prefixes if item.frame.startswith(p)), None)
        if hit is not None:
            prefixes.remove(hit)
        return hit is not None

    stream, room_stream = EventBus._stream, RoomSubscriptions._stream

    async def lossy(pubsub):
        async for event in stream(pubsub):
            if not lost(event):
                yield event

    async def lossy_rooms(self, pubsub):
        async for item in room_stream(self, pubsub):
            if not lost(item):
                yield item

    monkeypatch.setattr(EventBus, "_stream", staticmethod(lossy))
    monkeypatch.setattr(RoomSubscriptions, "_stream", lossy_rooms)
    return prefixes


async def _room(env):
    alice, bob = await env.user("alice"), await env.user("bob")
    watcher = await env.joined(bob)
    ids = [await env.chat.post(alice, "lobby", f"m{n}") for n in range(3)]
    await watcher.wait_for("message", 3)
    return alice, bob, watcher, ids


def _after_messages(conn) -> list[dict]:
    skipped = ("hello", "joined", "barrier", "presence")
    frames = [f for f in conn.frames if f["type"] not in skipped]
    return [f for f in frames if f["type"] != "message" or f["text"] == "last"]


async def test_a_dropped_edit_is_resent_before_the_next_change(make_env, dropped):
    env = await make_env(limits=FAST)
    alice, bob, watcher, ids = await _room(env)
    dropped.append(b'{"type":"edited"')
    edit = await env.chat.change(alice, "lobby", "edit", ids[0], "m0, fixed")
    react = await env.chat.change(bob, "lobby", "react", ids[1], "👍", True)
    assert react.rev == edit.rev + 1
    await env.sync("lobby", watcher)
    got = [f for f in _after_messages(watcher) if f["type"] != "message"]
    # The reaction that showed the jump is in Redis's state too: it comes as part of
    # it, in rev order, and its own frame is not applied again.
    assert [(f["type"], f["rev"]) for f in got] == [
        ("updated", edit.rev),
        ("updated", react.rev),
    ], got
    assert got[0]["message"]["id"] == ids[0] and got[0]["message"]["text"] == "m0, fixed"
    assert got[1]["message"]["id"] == ids[1] and got[1]["message"]["reactions"] == {"👍": ["bob"]}
    assert not dropped  # the edit was in fact dropped
    # Later changes arrive as themselves again.
    await env.chat.change(alice, "lobby", "edit", ids[2], "m2!")
    await env.sync("lobby", watcher)
    assert watcher.of_type("edited")[-1]["text"] == "m2!"


async def test_dropped_changes_come_in_rev_order_before_a_message(make_env, dropped):
    env = await make_env(limits=FAST)
    alice, bob, watcher, ids = await _room(env)
    dropped += [b'{"type":"reaction"', b'{"type":"deleted"', b'{"type":"edited"']
    revs = [
        (await env.chat.change(bob, "lobby", "react", ids[2], "🎉", True)).rev,
        (await env.chat.change(alice, "lobby", "delete", ids[1])).rev,
        (await env.chat.change(alice, "lobby", "edit", ids[0], "m0!")).rev,
    ]
    last = await env.chat.post(alice, "lobby", "last")
    await env.sync("lobby", watcher)
    got = _after_messages(watcher)
    assert [(f["type"], f["rev"]) for f in got[:3]] == [
        ("updated", revs[0]),
        ("deleted", revs[1]),
        ("updated", revs[2]),
    ], got
    assert got[0]["message"]["reactions"] == {"🎉": ["bob"]}
    assert got[2]["message"]["text"] == "m0!"
    assert got[3]["type"] == "message" and got[3]["id"] == last and len(got) == 4
    assert not dropped


async def test_change_frames_the_resent_state_contains_are_not_applied_again(make_env, dropped):
    """A reaction dropped, then the message deleted: the resend shows it deleted, and
    the delete frame (already contained) is not delivered on top of it."""
    env = await make_env(limits=FAST)
    alice, bob, watcher, ids = await _room(env)
    dropped.append(b'{"type":"reaction"')
    await env.chat.change(bob, "lobby", "react", ids[0], "👍", True)
    deleted = await env.chat.change(alice, "lobby", "delete", ids[0])
    await env.sync("lobby", watcher)
    got = [f for f in _after_messages(watcher) if f["type"] != "message"]
    assert [f["type"] for f in got] == ["deleted"], got
    assert got[0]["rev"] == deleted.rev
    # The stream goes on as usual afterwards.
    await env.chat.change(alice, "lobby", "edit", ids[1], "m1!")
    await env.sync("lobby", watcher)
    assert watcher.of_type("edited")[-1]["text"] == "m1!"


async def test_a_rev_jump_with_nothing_else_missed_sends_the_change_once(make_env, dropped):
    """A rev raised without a retained change (e.g. a change of a message only the
    archive keeps, which ``updates`` do not cover): nothing extra, nothing lost."""
    env = await make_env(limits=FAST)
    _alice, bob, watcher, ids = await _room(env)
    await env.redis.incr(env.graph.keys.rev("lobby"))
    react = await env.chat.change(bob, "lobby", "react", ids[0], "👍", True)
    await env.sync("lobby", watcher)
    got = [f for f in _after_messages(watcher) if f["type"] != "message"]
    # Redis's state of the one changed message, once: nothing extra, nothing lost.
    assert [(f["type"], f["rev"]) for f in got] == [("updated", react.rev)]
    assert got[0]["message"]["reactions"] == {"👍": ["bob"]}
