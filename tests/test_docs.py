"""The docs are part of the product: every setting, option and frame type is documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest

from chatroom.cli import main
from chatroom.config import Config
from chatroom.controllers.frames import CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def headings(path: Path, level: str) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m.group(1).strip().strip("`") for m in re.finditer(rf"^{level} (.+)$", text, re.M)}


@pytest.mark.parametrize("field", sorted(Config.__dataclass_fields__))
def test_every_setting_has_a_heading_in_configuration_md(field):
    assert field in headings(DOCS / "configuration.md", "##")


@pytest.mark.parametrize("kind", sorted(set(CLIENT_FRAME_TYPES) | set(SERVER_FRAME_TYPES)))
def test_every_frame_type_has_a_section_in_protocol_md(kind):
    assert kind in headings(DOCS / "protocol.md", "###")


def cli_commands(group: click.Group = main, prefix: str = "chatroom") -> dict:
    """Every command that runs something, by its full name: groups are walked into."""
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(cli_commands(command, f"{prefix} {name}"))
        else:
            found[f"{prefix} {name}"] = command
    return found


@pytest.mark.parametrize("name", sorted(cli_commands()))
def test_every_cli_option_is_in_usage_md(name):
    usage = (DOCS / "usage.md").read_text(encoding="utf-8")
    assert name in usage
    for param in cli_commands()[name].params:
        for flag in param.opts:
            if flag.startswith("--") and flag != "--help":
                assert flag in usage, f"{flag} of {name}"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", readme, re.S)
    assert "pip install ." in blocks[0] and "chatroom serve" in blocks[0]
    assert blocks[1].strip() == "scripts/test"
    script = ROOT / "scripts" / "test"
    assert os.access(script, os.X_OK), "scripts/test is not executable"
    text = script.read_text(encoding="utf-8")
    assert "pip install -q -e '.[test]'" in text and 'python -m pytest "$@"' in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^(exec )?scripts/test$", ci, re.M), "CI runs exactly the README's command"
