"""``chatroom history`` shows what SPEC §5 changes did to a room's messages (issue 12):
tombstones, edits with their time, replies and reaction counts in the text form, every
field in ``--json``, with hostile characters still escaped."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner, Result

from chatroom.cli import main
from tests.views.test_message_changes import change, posted

pytestmark = pytest.mark.timeout(60)


def operator(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
async def changed_history(app, database, redis_url) -> tuple[list[str], dict]:
    """Lobby with an edited, a deleted, a replied-to and a reacted message."""
    alice = await app.client("alice")
    bob = await app.client("bob")
    first = await posted(alice, "see you at 10")
    doomed = await posted(bob, "secret \u202e text")
    reply = await posted(bob, "ok \x1b[2J", reply_to=first["id"])
    edit = {"type": "edit", "room": "lobby", "id": first["id"], "text": "see you at 11\u202e"}
    assert (await change(alice, {**edit, "client_id": "e"}))["type"] == "ack"
    edited = await alice.next("edited", id=first["id"])
    delete = {"type": "delete", "room": "lobby", "id": doomed["id"], "client_id": "d"}
    assert (await change(bob, delete))["type"] == "ack"
    for who, emoji in ((alice, "👍"), (bob, "👍"), (bob, "🎉")):
        frame = {"type": "react", "room": "lobby", "id": first["id"], "emoji": emoji, "on": True}
        assert (await change(who, {**frame, "client_id": f"{who.name}{emoji}"}))["type"] == "ack"
    options = ["--data-dir", str(database.data_dir), "--redis-url", redis_url]
    ids = {"first": first["id"], "doomed": doomed["id"], "reply": reply["id"]}
    return options, {**ids, "edited": edited["edited"]}


async def test_history_text_shows_edits_tombstones_replies_and_reactions(changed_history):
    options, known = changed_history
    lines = (await asyncio.to_thread(operator, "history", "lobby", *options)).output.splitlines()
    assert len(lines) == 3
    when = datetime.fromtimestamp(known["edited"], timezone.utc).isoformat(timespec="seconds")
    assert lines[0].endswith(f"alice: see you at 11\\u202e (edited {when})  [👍 2] [🎉 1]")
    assert lines[1].endswith("bob: [message deleted]")
    assert "secret" not in lines[1]
    assert lines[2].endswith(f"bob: ↳ reply to #{known['first']}  ok \\x1b[2J")
    assert "\u202e" not in "".join(lines) and "\x1b" not in "".join(lines)


async def test_history_json_carries_the_change_fields(changed_history):
    options, known = changed_history
    result = await asyncio.to_thread(operator, "history", "lobby", "--json", *options)
    assert "\u202e" not in result.output and "\x1b" not in result.output
    exported = {m["id"]: m for m in map(json.loads, result.output.splitlines())}
    first, doomed, reply = (exported[known[k]] for k in ("first", "doomed", "reply"))
    assert (first["text"], first["edited"]) == ("see you at 11\u202e", known["edited"])
    assert first["reactions"] == {"👍": ["alice", "bob"], "🎉": ["bob"]}
    assert (doomed["deleted"], doomed["text"]) == (True, "")
    assert reply["reply_to"]["id"] == known["first"]
