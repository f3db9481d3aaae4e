"""The listener recovers what its subscription missed: from the history, or as an exact gap."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.models import MessageRepository, RedisKeys


@dataclass(frozen=True)
class LostKeys(RedisKeys):
    """The same room keys, but events go to a channel nobody listens to: lost publishes."""

    def events(self) -> str:
        return f"{self.prefix}:nobody-listens"


def lossy(env, history_size: int = 100) -> MessageRepository:
    """A repository that stores messages like the real one but whose publishes are lost."""
    return MessageRepository(env.redis, LostKeys(), history_size)


async def test_a_jump_in_ids_is_filled_from_the_history(env):
    alice = await env.user("alice")
    watcher = await env.joined(alice)
    lost = lossy(env)
    for i in range(3):
        await lost.append("lobby", "alice", f"lost {i}")
    await env.messages.append("lobby", "alice", "seen")
    frames = await watcher.wait_for("message", 4)
    assert [(f["id"], f["text"]) for f in frames] == [
        (1, "lost 0"), (2, "lost 1"), (3, "lost 2"), (4, "seen")
    ]  # fmt: skip
    await env.sync("lobby", watcher)
    assert len(watcher.of_type("message")) == 4  # nothing twice


async def test_messages_trimmed_before_recovery_are_reported_as_a_gap(make_env):
    env = await make_env(history_size=5)
    alice = await env.user("alice")
    watcher = await env.joined(alice)
    lost = lossy(env, history_size=5)
    for i in range(10):
        await lost.append("lobby", "alice", f"lost {i}")
    await env.messages.append("lobby", "alice", "seen")
    resync = (await watcher.wait_for("joined", 2))[-1]
    # ids 1..6 were trimmed; 7..11 are retained; the socket is told exactly that.
    assert (resync["gap"], resync["missing"]) == (True, 6)
    assert [m["id"] for m in resync["messages"]] == [7, 8, 9, 10, 11]
    await env.sync("lobby", watcher)
    assert watcher.of_type("message") == []  # id 11 came in the resync, not again


async def test_sending_marks_the_senders_own_message_read(env):
    env.chat.read_markers = ReadMarkerBuffer(env.run)
    alice, bob = await env.user("alice"), await env.user("bob")
    conn = await env.joined(alice)
    other = await env.joined(bob)
    for text in ("one", "two"):
        await env.chat.send(conn, "lobby", text)
    await env.chat.send(other, "lobby", "from bob")
    await env.chat.read_markers.flush()
    mine = {r["name"]: r for r in await env.rooms.memberships(alice)}
    assert mine["lobby"]["unread"] == 1  # only bob's message
    # Replying means having seen the room: bob's marker moved past alice's two.
    theirs = {r["name"]: r for r in await env.rooms.memberships(bob)}
    assert theirs["lobby"]["unread"] == 0
