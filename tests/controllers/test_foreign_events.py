"""[issue 17] Events of rooms with no local subscriber are dropped as soon as they are
read, and yet each message id among them still raises the room's floor (SPEC §8: a
send of this process never reuses an id another process published).

That is the one channel's case (``--pubsub-channels one``): with a channel per room
(the default) a process receives nothing of a room it has no member in, and a room's
floor comes from what it reads when a member joins, as with sharded pub/sub."""

from __future__ import annotations


async def test_ids_of_rooms_without_a_member_here_raise_the_floor(make_env):
    env = await make_env(pubsub_channels="one")
    watcher = await env.joined(await env.user("bob"))
    for n in range(3):  # as another process's sends: published, never posted here
        await env.messages.append("quiet", "alice", f"m{n}")
    await env.messages.events.publish("quiet", b'{"type":"typing","room":"quiet"}')
    await env.sync("lobby", watcher)  # one channel, in order: "quiet"'s events are read
    assert env.rooms.epochs.cached("quiet") == 3
    assert all(f.get("room", "lobby") == "lobby" for f in watcher.frames[1:])  # nothing of "quiet"
