"""The docs are part of the product: every setting, option and frame type is documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest

from chatroom.cli import main
from chatroom.config import settings
from chatroom.controllers.frames import CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def headings(path: Path, level: str) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m.group(1).strip().strip("`") for m in re.finditer(rf"^{level} (.+)$", text, re.M)}


def sections(path: Path) -> dict[str, str]:
    """Each ``## heading`` of a page with the text under it."""
    parts = re.split(r"^## (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    pairs = zip(parts[1::2], parts[2::2], strict=True)
    return {name.strip().strip("`"): text for name, text in pairs}


@pytest.mark.parametrize("setting", settings(), ids=lambda s: s.name)
def test_every_setting_has_a_section_in_configuration_md(setting):
    section = sections(DOCS / "configuration.md").get(setting.name)
    assert section is not None, f"no '## {setting.name}' in docs/configuration.md"
    assert f"`{setting.flag}`" in section and f"`{setting.env_var}`" in section


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
    assert "pip install -q -e '.[test]'" in text
    assert 'python -m pytest -n auto --dist loadfile "$@"' in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^(exec )?scripts/test$", ci, re.M), "CI runs exactly the README's command"
