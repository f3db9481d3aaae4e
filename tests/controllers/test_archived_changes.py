"""Edits, deletes and reactions of messages that are only in the SQL archive (SPEC §5,
§7): trimmed from Redis, they change like retained ones — the room's rev rises, every
joined connection gets the change frame, and the archive ends with the new state."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from chatroom.controllers import SendLimits
from chatroom.controllers.errors import ForbiddenError, NotFoundError
from chatroom.models.archive import ArchivedMessage
from chatroom.models.limits import SendRate
from chatroom.models.message_changes import ArchivedCopy, Change, ChangeStatus

pytestmark = pytest.mark.timeout(60)

HISTORY = 3
SENT = 8  # ids 1..5 end up only in the archive, 6..8 also in Redis


@pytest.fixture
async def trimmed(make_env):
    """Alice's 8 messages in lobby, archived; Redis keeps the newest 3."""
    env = await make_env(history_size=HISTORY, limits=SendLimits(burst=100_000, per_second=1000))
    env.alice = await env.user("alice")
    env.bob = await env.user("bob")
    for n in range(1, SENT + 1):
        await env.chat.post(env.alice, "lobby", f"message {n}")
    env.archive = env.graph.archive
    await env.archive.archive_once()
    seq, stored = await env.graph.message_change_repo.read("lobby", 2)
    assert seq == SENT and stored is None  # only in the archive now
    env.watcher = await env.joined(env.bob)
    return env


async def _row(env, mid: int) -> dict:
    await env.chat.changes.settle()
    row = await env.run(lambda: ArchivedMessage.get(ArchivedMessage.message_id == mid).item())
    return row


async def _rev(env) -> int:
    return int(await env.redis.get(env.graph.keys.rev("lobby")) or 0)


async def test_edit_delete_react_an_archived_message(trimmed):
    env = trimmed
    rev = await _rev(env)
    result = await env.chat.change(env.alice, "lobby", "edit", 2, "message two, fixed")
    assert result.id == 2 and result.rev == rev + 1
    edited = (await env.watcher.wait_for("edited"))[0]
    assert edited["id"] == 2 and edited["text"] == "message two, fixed"
    assert edited["rev"] == rev + 1
    item = await _row(env, 2)
    assert item["text"] == "message two, fixed" and item["edited"] == edited["edited"]

    assert (await env.chat.change(env.bob, "lobby", "react", 2, "👍", True)).rev == rev + 2
    assert (await env.chat.change(env.alice, "lobby", "react", 2, "🎉", True)).rev == rev + 3
    reactions = await env.watcher.wait_for("reaction", 2)
    assert [(r["user"], r["emoji"], r["rev"]) for r in reactions] == [
        ("bob", "👍", rev + 2),
        ("alice", "🎉", rev + 3),
    ]
    item = await _row(env, 2)
    assert item["reactions"] == {"👍": ["bob"], "🎉": ["alice"]}
    assert item["text"] == "message two, fixed"  # the edit is kept

    # Reacting twice is a no-op: no rev, nothing sent.
    assert (await env.chat.change(env.bob, "lobby", "react", 2, "👍", True)).rev is None
    assert await _rev(env) == rev + 3

    assert (await env.chat.change(env.alice, "lobby", "delete", 2)).rev == rev + 4
    deleted = (await env.watcher.wait_for("deleted"))[0]
    assert deleted == {"type": "deleted", "room": "lobby", "id": 2, "rev": rev + 4}
    item = await _row(env, 2)
    assert item["text"] == "" and item["deleted"] is True and "reactions" not in item
    # Paging back and search show the archive's new state.
    page = await env.archive.page(env.alice, "lobby", 4, 3)
    shown = [orjson.loads(raw) for raw in page.items]
    assert [(m["id"], m["text"]) for m in shown] == [(1, "message 1"), (2, ""), (3, "message 3")]
    assert (await env.archive.search(env.alice, "fixed")).results == []


async def test_hostile_changes_of_archived_messages_change_nothing(trimmed):
    env = trimmed
    rev = await _rev(env)
    with pytest.raises(ForbiddenError):
        await env.chat.change(env.bob, "lobby", "edit", 3, "not yours")
    with pytest.raises(ForbiddenError):
        await env.chat.change(env.bob, "lobby", "delete", 3)
    for mid in (SENT + 1, 10**6):  # an id the room never had
        with pytest.raises(NotFoundError, match="no message"):
            await env.chat.change(env.alice, "lobby", "edit", mid, "x")
        with pytest.raises(NotFoundError):
            await env.chat.change(env.bob, "lobby", "react", mid, "👍", True)
    await env.chat.change(env.alice, "lobby", "delete", 4)
    with pytest.raises(ForbiddenError, match="deleted"):
        await env.chat.change(env.alice, "lobby", "edit", 4, "back from the dead")
    with pytest.raises(ForbiddenError, match="deleted"):
        await env.chat.change(env.bob, "lobby", "react", 4, "👍", True)
    with pytest.raises(ForbiddenError, match="deleted"):
        await env.chat.change(env.alice, "lobby", "delete", 4)
    # Gone from SQL too (past retention, or trimmed before it was archived): not_found.
    await env.run(lambda: ArchivedMessage.delete().where(ArchivedMessage.message_id == 1).execute())
    with pytest.raises(NotFoundError, match="no longer stored"):
        await env.chat.change(env.alice, "lobby", "edit", 1, "x")
    assert await _rev(env) == rev + 1  # only the one delete
    assert (await _row(env, 3))["text"] == "message 3"
    await env.sync("lobby", env.watcher)
    assert [f["type"] for f in env.watcher.frames if f["type"] != "barrier"][-1] == "deleted"


async def test_concurrent_reactions_to_an_archived_message_are_all_kept(trimmed):
    env = trimmed
    users = [env.alice, env.bob] + [await env.user(f"user{n}") for n in range(6)]
    rev = await _rev(env)
    results = await asyncio.gather(
        *(env.chat.change(user, "lobby", "react", 3, "👍", True) for user in users)
    )
    assert sorted(r.rev for r in results) == list(range(rev + 1, rev + 1 + len(users)))
    item = await _row(env, 3)
    assert sorted(item["reactions"]["👍"]) == sorted(u.name for u in users)
    frames = await env.watcher.wait_for("reaction", len(users))
    assert [f["rev"] for f in frames] == list(range(rev + 1, rev + 1 + len(users)))


async def test_a_change_computed_from_a_stale_archive_copy_is_refused(trimmed):
    env = trimmed
    repo = env.graph.message_change_repo
    await env.chat.change(env.alice, "lobby", "edit", 5, "five, edited")
    settled = await _rev(env)
    assert (await _row(env, 5))["text"] == "five, edited"
    old = {"type": "message", "room": "lobby", "id": 5, "user": "alice", "text": "message 5"}
    change = Change({**old, "text": "lost update"}, {"type": "edited", "room": "lobby", "id": 5})
    # A copy of SQL read before the edit reached it is older than the rev Redis keeps.
    stale = ArchivedCopy(old, version=settled - 1)
    status, _ = await repo.commit_archived("lobby", "alice", stale, change, SendRate(0, 0))
    assert status == ChangeStatus.STALE
    # A pending frame of a newer change is the message's truth: an SQL copy conflicts.
    await env.chat.change(env.bob, "lobby", "react", 5, "👀", True)
    pending = await repo.pending_archived("lobby", 5)
    if pending is not None:  # (unless SQL already has it)
        fresh = ArchivedCopy(old, version=settled)
        status, _ = await repo.commit_archived("lobby", "alice", fresh, change, SendRate(0, 0))
        assert status == ChangeStatus.CONFLICT
    assert await _rev(env) == settled + 1
    assert (await _row(env, 5))["text"] == "five, edited"
