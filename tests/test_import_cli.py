"""``chatroom history ROOM --json`` and ``chatroom import`` through the CLI: an export
loads into an empty room with its ids, times and texts kept, refuses a room that has
messages, and rejects a malformed file with a clear error (SPEC §7)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chatroom.cli import main

pytestmark = pytest.mark.timeout(60)

TEXTS = ["first", "héllo 世界 😀", 'quotes " and \\ and \u202e', "last"]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture
async def storage(app, database, redis_url) -> list[str]:
    """The operator options that reach the app's data, once lobby holds TEXTS."""
    alice = await app.client("alice")
    for i, text in enumerate(TEXTS):
        await alice.send(text, client_id=f"c{i}")
        assert (await alice.next("ack"))["client_id"] == f"c{i}"
    return ["--data-dir", str(database.data_dir), "--redis-url", redis_url]


async def test_history_json_round_trips_through_import(storage, tmp_path: Path):
    exported = await asyncio.to_thread(ok, "history", "lobby", "--json", *storage)
    dump = tmp_path / "lobby.jsonl"
    dump.write_text(exported.output, encoding="utf-8")
    await asyncio.to_thread(ok, "rooms", "create", "copy", *storage)

    result = await asyncio.to_thread(ok, "import", str(dump), "--room", "copy", *storage)
    assert "Imported 4 messages into copy" in result.output

    copied = await asyncio.to_thread(ok, "history", "copy", "--json", *storage)
    before = [json.loads(line) for line in exported.output.splitlines()]
    after = [json.loads(line) for line in copied.output.splitlines()]
    assert [m["text"] for m in before] == TEXTS
    assert [(m["id"], m["user"], m["text"], m["ts"]) for m in after] == [
        (m["id"], m["user"], m["text"], m["ts"]) for m in before
    ]
    assert {m["room"] for m in after} == {"copy"}

    # Only into an empty room: importing again (or into lobby) is refused.
    again = await asyncio.to_thread(run, "import", str(dump), "--room", "copy", *storage)
    assert again.exit_code != 0
    assert "has messages" in again.output
    # Without --room, the export's own room is taken: lobby, which is not empty.
    own = await asyncio.to_thread(run, "import", str(dump), *storage)
    assert own.exit_code != 0
    assert "lobby" in own.output


async def test_import_rejects_a_malformed_file_with_its_line_number(storage, tmp_path: Path):
    await asyncio.to_thread(ok, "rooms", "create", "empty", *storage)
    good = json.dumps({"id": 1, "user": "alice", "text": "x", "ts": 1.0})
    for body, expected in (
        (good + "\nnot json\n", "line 2"),
        (good + "\n" + good + "\n", "same id twice"),
        ('{"id": 1, "user": "a b", "text": "", "ts": 1}\n', "line 1"),
        ('{"id": -3, "user": "alice", "text": "", "ts": 1}\n', "line 1"),
    ):
        dump = tmp_path / "bad.jsonl"
        dump.write_text(body, encoding="utf-8")
        result = await asyncio.to_thread(run, "import", str(dump), "--room", "empty", *storage)
        assert result.exit_code != 0, body
        assert expected in result.output, (body, result.output)
    # A file with no room named and no --room: a usage error, nothing imported.
    dump = tmp_path / "noroom.jsonl"
    dump.write_text(good + "\n", encoding="utf-8")
    result = await asyncio.to_thread(run, "import", str(dump), *storage)
    assert result.exit_code == 2
    assert "--room" in result.output
    history = await asyncio.to_thread(ok, "history", "empty", "--json", *storage)
    assert history.output.strip() == ""
