"""What ``chatroom history`` (and the other operator commands) print cannot trick the terminal:
bidi controls, C1 controls and other invisible characters of a message are shown escaped, in
the text lines and in ``--json``, while ordinary letters of any script stay readable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chatroom.cli import main

pytestmark = pytest.mark.timeout(60)

#: Characters a terminal acts on or hides: none of them may reach it raw.
INVISIBLE = (
    [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + ["\u200e", "\u200f", "\u061c"]  # LRM RLM ALM
    + [chr(c) for c in range(0x80, 0xA0)]  # C1 controls, among them CSI and NEL
    + ["\x1b", "\x7f", "\u2028", "\u2029", "\ufeff", "\U000e0001"]
)

HOSTILE_TEXTS = [
    "invoice\u202egpj.exe",  # shows as "invoiceexe.jpg" on a terminal
    "\u2067admin\u2069 approved \u2066this\u2069",
    "\u200eleft\u200fright\u061c",
    "\x9b31mred via C1 CSI\x9b0m and \x85 next line",
    "\x1b[2J\x1b[Hcleared screen",
    "line\u2028separator\u2029paragraph\x7fdel\ufeffbom\U000e0001tag",
    "".join(INVISIBLE),
]
FRIENDLY = "héllo 世界 😀 مرحبا"


def operator(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_nothing_invisible(output: str) -> None:
    raw = sorted({f"U+{ord(c):04X}" for c in output if c in INVISIBLE})
    assert not raw, f"printed raw: {raw}"


@pytest.fixture
async def hostile_history(app, database, redis_url) -> list[str]:
    """The operator options that reach the app's data, once the hostile texts are in lobby."""
    alice = await app.client("alice")
    for i, text in enumerate([*HOSTILE_TEXTS, FRIENDLY]):
        await alice.send(text, client_id=f"h{i}")
        assert (await alice.next("ack"))["client_id"] == f"h{i}"
    return ["--data-dir", str(database.data_dir), "--redis-url", redis_url]


async def test_history_json_escapes_bidi_and_c1_characters(hostile_history):
    result = await asyncio.to_thread(operator, "history", "lobby", "--json", *hostile_history)
    assert_nothing_invisible(result.output)
    # The escapes are plain JSON: the texts come back exactly as they were sent.
    exported = [json.loads(line) for line in result.output.splitlines()]  # JSON lines
    assert [m["text"] for m in exported] == [*HOSTILE_TEXTS, FRIENDLY]
    assert "invoice\\u202egpj.exe" in result.output
    assert "\\udb40\\udc01" in result.output  # outside the BMP: a surrogate pair
    assert FRIENDLY in result.output  # letters of any script stay readable


async def test_history_text_shows_bidi_and_c1_characters_escaped(hostile_history):
    result = await asyncio.to_thread(operator, "history", "lobby", *hostile_history)
    assert_nothing_invisible(result.output)
    lines = result.output.splitlines()
    assert len(lines) == len(HOSTILE_TEXTS) + 1  # one line per message, separators escaped
    assert lines[0].endswith("alice: invoice\\u202egpj.exe")
    assert lines[-1].endswith(f"alice: {FRIENDLY}")


def test_rooms_list_json_escapes_a_hostile_topic(tmp_path: Path):
    data = ["--data-dir", str(tmp_path / "data")]
    topic = "Support \u202e!kcah\u202c \x9b2J"
    operator("rooms", "create", "support", "--topic", topic, *data)
    result = operator("rooms", "list", "--json", *data)
    assert_nothing_invisible(result.output)
    rooms = {room["name"]: room["topic"] for room in json.loads(result.output)}
    assert rooms["support"] == topic
    assert_nothing_invisible(operator("rooms", "list", *data).output)
