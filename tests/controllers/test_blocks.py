"""Blocking (SPEC §6): ``BlockController`` and the direct-room check it adds, including a
socket already in the conversation, on this process and on another one at once."""

from __future__ import annotations

import pytest

from chatroom.controllers.blocks import MAX_BLOCKS
from chatroom.controllers.errors import BadRequestError, ForbiddenError, NotFoundError
from chatroom.models import AuditEntry, Block, User
from tests.controllers.conftest import ChatEnv

DM = "dm:alice:bob"


async def test_block_unblock_and_list(env: ChatEnv) -> None:
    alice, _, _ = await env.user("alice"), await env.user("Bob"), await env.user("carol")
    blocks = env.graph.blocks
    assert await blocks.block(alice, "bob") == ("Bob", True)
    assert await blocks.block(alice, "BOB") == ("Bob", False), "blocking again is harmless"
    await blocks.block(alice, "carol")
    listed = [b.public() for b in await blocks.blocked(alice)]
    assert [b["user"] for b in listed] == ["Bob", "carol"]
    assert all(b["since"].endswith("+00:00") for b in listed)
    assert await blocks.unblock(alice, "bob") == ("Bob", True)
    assert await blocks.unblock(alice, "bob") == ("Bob", False)
    assert [b.name for b in await blocks.blocked(alice)] == ["carol"]
    assert await env.run(AuditEntry.newest) == [], "a block is not a moderation action"


@pytest.mark.parametrize(
    "name, error",
    [
        ("nobody", NotFoundError),
        ("alice", BadRequestError),
        ("ALICE", BadRequestError),
        ("", BadRequestError),
        ("no spaces", BadRequestError),
        ("x" * 33, BadRequestError),
        ("x" * 100_000, BadRequestError),
        (None, BadRequestError),
        (7, BadRequestError),
        (["bob"], BadRequestError),
        ({"user": "bob"}, BadRequestError),
    ],
)
async def test_bad_block_targets(env: ChatEnv, name, error) -> None:
    alice = await env.user("alice")
    await env.user("bob")
    with pytest.raises(error):
        await env.graph.blocks.block(alice, name)
    with pytest.raises(error):
        await env.graph.blocks.unblock(alice, name)
    assert await env.graph.blocks.blocked(alice) == []


async def test_the_number_of_blocks_is_bounded(env: ChatEnv) -> None:
    alice, _ = await env.user("alice"), await env.user("bob")

    def fill() -> None:
        first = User.create(name="f0", name_key="f0", password_hash="x")
        for i in range(MAX_BLOCKS):
            user = (
                first if i == 0 else User.create(name=f"f{i}", name_key=f"f{i}", password_hash="x")
            )
            Block.add(alice.id, user.id)

    await env.run(fill)
    with pytest.raises(BadRequestError, match="at most"):
        await env.graph.blocks.block(alice, "bob")
    assert (await env.graph.blocks.block(alice, "f7")) == ("f7", False), "repeating one is fine"
    await env.graph.blocks.unblock(alice, "f7")
    assert (await env.graph.blocks.block(alice, "bob")) == ("bob", True)


async def test_a_block_closes_the_direct_room_both_ways(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    b = await env.joined(bob, DM)
    await env.chat.send(b, DM, "hi alice")
    await env.graph.blocks.block(alice, "bob")
    a = await env.connect(alice)
    for account, conn in ((bob, b), (alice, a)):
        with pytest.raises(ForbiddenError):
            await env.chat.send(conn, DM, "still there?")
        with pytest.raises(ForbiddenError):
            await env.rooms.history(account, DM, None)
        with pytest.raises(ForbiddenError):
            await env.chat.join(conn, DM)
    with pytest.raises(ForbiddenError, match="blocked this user"):
        await env.rooms.open(alice, DM)
    with pytest.raises(ForbiddenError, match="does not take"):
        await env.rooms.open(bob, DM)
    # The public rooms are untouched, and unblocking opens the room again.
    await env.chat.join(b, "lobby")
    await env.chat.send(b, "lobby", "in lobby")
    await env.graph.blocks.unblock(alice, "bob")
    await env.chat.send(b, DM, "friends again")
    history = await env.rooms.history(alice, DM, None)
    assert len(history.items) == 2


async def test_a_blocked_user_cannot_open_a_new_direct_room(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    await env.graph.blocks.block(alice, "bob")
    with pytest.raises(ForbiddenError):
        await env.rooms.join(bob, DM)
    from chatroom.models import Room

    assert await env.run(Room.by_name, DM) is None, "no room is made for the refused user"
    # Others, and notes to oneself, are not affected.
    carol = await env.user("carol")
    assert (await env.rooms.join(carol, "dm:alice:carol")).name == "dm:alice:carol"
    assert (await env.rooms.join(bob, "dm:bob:bob")).name == "dm:bob:bob"
    with pytest.raises(ForbiddenError):  # someone else's room stays someone else's
        await env.rooms.open(carol, DM)


async def test_a_socket_already_in_the_room_is_refused_at_once(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a, b = await env.joined(alice, DM), await env.joined(bob, DM)
    await env.chat.send(b, DM, "one")
    await env.chat.send(a, DM, "two")
    assert (bob.id, DM) in env.chat._access  # the check is cached: no SQL per message
    await env.graph.blocks.block(alice, "bob")
    await env.sync(DM, a, b)  # the control event was applied before the marker
    assert (bob.id, DM) not in env.chat._access and (alice.id, DM) not in env.chat._access
    for conn, verb in ((b, "send"), (b, "typing"), (a, "send")):
        with pytest.raises(ForbiddenError):
            if verb == "send":
                await env.chat.send(conn, DM, "after the block")
            else:
                await env.chat.typing(conn, DM)
    with pytest.raises(ForbiddenError):
        await env.chat.change(bob, DM, "edit", 1, "edited after the block")
    assert (bob.id, DM) not in env.chat._access, "a refusal is never cached"
    await env.sync(DM, a, b)
    assert [m["text"] for m in a.of_type("message")] == ["one", "two"]


async def test_a_block_reaches_another_process_at_once(make_env) -> None:
    one, two = await make_env(), await make_env()
    alice, bob = await one.user("alice"), await one.user("bob")
    b2 = await two.joined(bob, DM)  # bob's socket is on process two
    a1 = await one.joined(alice, DM)
    await two.chat.send(b2, DM, "hello from two")
    assert (bob.id, DM) in two.chat._access
    await one.graph.blocks.block(alice, "bob")  # blocked through process one
    await one.sync(DM, a1, b2)
    with pytest.raises(ForbiddenError):
        await two.chat.send(b2, DM, "after the block")
    await one.sync(DM, a1, b2)
    assert [m["text"] for m in a1.of_type("message")] == ["hello from two"]


async def test_a_block_event_for_other_users_drops_nothing_else(env: ChatEnv) -> None:
    alice, bob = await env.user("alice"), await env.user("bob")
    a = await env.joined(alice)
    await env.chat.send(a, "lobby", "cached")
    await env.rooms.join(bob, DM)
    for payload in (
        {"room": DM, "user_ids": "1"},
        {"room": DM, "user_ids": [True, None, "1", 1.5]},
        {"room": 5, "user_ids": [alice.id]},
        {"user_ids": [alice.id]},
    ):
        await env.events.publish_control("blocks_changed", **payload)
    await env.events.publish_control("blocks_changed", room="dm:x:y", user_ids=[alice.id])
    await env.sync("lobby", a)
    assert (alice.id, "lobby") in env.chat._access
    await env.chat.send(a, "lobby", "still fine")
