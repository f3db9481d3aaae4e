"""SPEC §5 catch-up across processes: a client that reconnects with ``since`` and
``since_rev`` and applies ``messages`` and ``updates`` has exactly what a fresh
join shows, whatever another process changed meanwhile; concurrent edits of one
message from two processes converge."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import ChatClient, connect
from tests.views.test_message_changes import change, posted

pytestmark = pytest.mark.timeout(90)

FAST = {"send_burst": 1000, "send_per_second": 1000}


def state_of(joined: dict) -> dict[int, dict]:
    return {m["id"]: m for m in joined["messages"]}


def caught_up(before: dict[int, dict], joined: dict) -> dict[int, dict]:
    after = dict(before)
    for item in joined["messages"] + joined["updates"]:
        after[item["id"]] = item
    return after


async def socket(app, name: str) -> ChatClient:
    token = await app.api.user(name)
    client = ChatClient(await connect(app.ws_url, token), name)
    app.clients.append(client)
    await client.next("hello")
    return client


async def rejoin(app, name: str, since: int, since_rev: int) -> dict:
    client = await socket(app, name)
    await client.send_frame(
        {"type": "join", "room": "lobby", "since": since, "since_rev": since_rev}
    )
    return await client.next("joined")


async def fresh(app, name: str) -> dict:
    return await (await socket(app, name)).join("lobby")


async def test_reconnect_with_since_rev_equals_a_fresh_join(app_factory):
    first = await app_factory(**FAST)
    second = await app_factory(**FAST)
    alice = await first.client("alice")
    bob = await second.client("bob")
    ids = [(await posted(who, f"m{i}"))["id"] for i, who in enumerate([alice, bob] * 4)]
    snapshot = await fresh(first, "alice")
    alice.close()
    # While alice is away, bob (on the other process) changes old and new messages.
    await change(
        bob, {"type": "edit", "room": "lobby", "id": ids[1], "text": "m1!", "client_id": "1"}
    )
    await change(bob, {"type": "delete", "room": "lobby", "id": ids[3], "client_id": "2"})
    for emoji in ("👍", "🎉"):
        frame = {"type": "react", "room": "lobby", "id": ids[0], "emoji": emoji, "on": True}
        await change(bob, {**frame, "client_id": emoji})
    await change(bob, {**frame, "on": False, "client_id": "off"})
    new = await posted(bob, "while you were out", reply_to=ids[0])
    await change(
        bob, {"type": "edit", "room": "lobby", "id": new["id"], "text": "later", "client_id": "3"}
    )
    last_id = max(snapshot_ids := list(state_of(snapshot)))
    assert last_id == ids[-1] and snapshot_ids == ids
    back = await rejoin(first, "alice", last_id, snapshot["rev"])
    assert [m["id"] for m in back["messages"]] == [new["id"]]
    assert sorted(m["id"] for m in back["updates"]) == [ids[0], ids[1], ids[3]]
    now = await fresh(first, "alice")
    assert back["rev"] == now["rev"] == snapshot["rev"] + 7
    assert caught_up(state_of(snapshot), back) == state_of(now)
    # Nothing changed since: no updates, no messages.
    again = await rejoin(second, "alice", new["id"], now["rev"])
    assert again["messages"] == [] and again["updates"] == []
    # A bad since_rev is refused like a bad since.
    client = await socket(first, "alice")
    for bad in (-1, "1", 1.5, True, 2**53 + 1):
        await client.send_frame({"type": "join", "room": "lobby", "since_rev": bad})
        error = await client.next("error")
        assert (error["code"], error["room"]) == ("bad_request", "lobby")


async def test_concurrent_edits_from_two_processes_converge(app_factory):
    first = await app_factory(**FAST)
    second = await app_factory(**FAST)
    alice_a = await first.client("alice")
    alice_b = await second.client("alice")
    watchers = [await first.client("bob"), await second.client("carol")]
    target = (await posted(alice_a, "v0"))["id"]

    async def edits(client: ChatClient, tag: str) -> None:
        for i in range(15):
            frame = {"type": "edit", "room": "lobby", "id": target, "text": f"{tag}{i}"}
            await client.send_frame({**frame, "client_id": f"{tag}{i}"})
        for _ in range(15):
            assert (await client.next("ack"))["type"] == "ack"

    await asyncio.gather(edits(alice_a, "a"), edits(alice_b, "b"))
    finals = []
    for client in [alice_a, alice_b, *watchers]:
        got = [await client.next("edited") for _ in range(30)]
        revs = [e["rev"] for e in got]
        assert revs == sorted(revs) and len(set(revs)) == 30  # in order, none lost
        finals.append((got[-1]["text"], got[-1]["rev"]))
    assert len(set(finals)) == 1
    now = state_of(await fresh(second, "bob"))[target]
    assert (now["text"], now["rev"]) == finals[0]


async def test_a_reconnect_storm_with_since_rev(app_factory):
    first = await app_factory(**FAST)
    second = await app_factory(**FAST)
    bob = await second.client("bob")
    ids = [(await posted(bob, f"s{i}"))["id"] for i in range(6)]
    snapshots = []
    for i in range(12):
        snapshots.append(await fresh(first, f"u{i}"))
        target = ids[i % len(ids)]
        if i % 3 == 0:
            await change(
                bob,
                {
                    "type": "edit",
                    "room": "lobby",
                    "id": target,
                    "text": f"e{i}",
                    "client_id": f"e{i}",
                },
            )
        elif i % 3 == 1:
            react = {"type": "react", "room": "lobby", "id": target, "emoji": f"x{i}", "on": True}
            await change(bob, {**react, "client_id": f"r{i}"})
        else:
            ids.append((await posted(bob, f"n{i}"))["id"])
    await change(bob, {"type": "delete", "room": "lobby", "id": ids[2], "client_id": "d"})
    backs = await asyncio.gather(
        *(
            rejoin(first if i % 2 else second, f"u{i}", max(state_of(s)), s["rev"])
            for i, s in enumerate(snapshots)
        )
    )
    now = state_of(await fresh(first, "bob"))
    for snapshot, back in zip(snapshots, backs, strict=True):
        assert caught_up(state_of(snapshot), back) == now
