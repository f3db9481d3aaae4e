"""[issue 13] A user added to a room hears of it at once: every socket of theirs, on
every process, gets ``added`` (an extension of SPEC §6), so the sidebar need not wait
for its next refresh."""

from __future__ import annotations

import pytest

from tests.controllers.conftest import ChatEnv
from tests.controllers.moderation_helpers import private_club


async def test_an_added_user_hears_it_on_every_process(make_env) -> None:
    here, there = await make_env(), await make_env()
    alice, bob, carol = await private_club(here)
    last = await here.chat.post(alice, "club", "before carol")
    near, far = await here.joined(carol), await there.joined(carol)
    bystander = await there.joined(bob)

    member, created = await here.graph.moderation.add_member(alice, "club", "carol")
    assert created and member.role == "member"
    for conn in (near, far):
        (frame,) = await conn.wait_for("added")
        assert frame == {
            "type": "added",
            "room": "club",
            "private": True,
            "role": "member",
            "last_id": last,
        }
    # The frame is carol's alone; adding her again tells nobody anything.
    await here.graph.moderation.add_member(alice, "club", "carol")
    await there.sync("lobby", far, bystander)
    assert bystander.of_type("added") == [] and len(far.of_type("added")) == 1
    # The room is hers now: the join the browser sends next succeeds, on either process.
    await there.chat.join(far, "club", since=last)
    joined = (await far.wait_for("joined", 2))[-1]
    assert joined["room"] == "club" and joined["messages"] == []


async def test_a_public_room_add_says_private_false(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.rooms.create(alice, "general")
    conn = await env.connect(bob)
    await env.graph.moderation.add_member(alice, "general", "bob")
    (frame,) = await conn.wait_for("added")
    assert frame["private"] is False and frame["room"] == "general"


@pytest.mark.parametrize(
    "payload",
    [
        {"room": "club", "user_id": "1"},
        {"room": 5, "user_id": 1},
        {"room": "club", "user_id": True},
        {"room": "club", "user_id": 1, "role": "<script>", "last_id": -4, "private": "yes"},
    ],
)
async def test_a_malformed_member_added_event_sends_nothing_odd(env: ChatEnv, payload) -> None:
    alice = await env.user("alice")
    assert alice.id == 1
    conn = await env.joined(alice)
    await env.events.publish_control("member_added", **payload)
    await env.sync("lobby", conn)
    for frame in conn.of_type("added"):  # only the last, well-typed one is delivered, tamed
        assert frame == {
            "type": "added",
            "room": "club",
            "private": False,
            "role": "member",
            "last_id": 0,
        }


async def test_an_added_frame_that_comes_before_hello_follows_it(env: ChatEnv) -> None:
    alice, _bob, carol = await private_club(env)
    watcher = await env.joined(alice)
    read = env.rooms.memberships

    async def memberships_then_added(account):
        rooms = await read(account)  # hello's rooms are read: carol is not in club yet
        await env.graph.moderation.add_member(alice, "club", "carol")
        await env.sync("lobby", watcher)  # the control event was applied meanwhile
        return rooms

    env.rooms.memberships = memberships_then_added
    conn = await env.connect(carol)  # asserts that hello comes first
    assert [f["type"] for f in conn.frames] == ["hello", "added"]
    assert "club" not in [r["name"] for r in conn.frames[0]["rooms"]]
