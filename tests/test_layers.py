"""The import rules of docs/architecture.md ("What may import what"), checked on the tree.

cli -> operator_commands/server -> wiring -> app -> views -> controllers -> models;
config is imported everywhere. A layer never imports one above it, controllers
never import Tornado, and views reach storage only through controllers (the
exceptions are listed in ``VIEW_MODEL_EXCEPTIONS`` and in the document).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

#: (view module, model module) pairs a view may import: pure constants and
#: functions with no query and no Redis, documented in docs/architecture.md.
VIEW_MODEL_EXCEPTIONS = {
    # INLINE_IMAGE_TYPES, THUMBNAIL_PIXELS and sniff_type: what a served file is.
    ("chatroom.views.files", "chatroom.models.files"),
}

#: What each layer may not import (prefixes of module names).
ABOVE_APP = (
    "chatroom.app",
    "chatroom.wiring",
    "chatroom.archive_wiring",
    "chatroom.server",
    "chatroom.operator_commands",
    "chatroom.archive_process",
)
FORBIDDEN = {
    "chatroom.models": ("tornado", "chatroom.controllers", "chatroom.views", *ABOVE_APP),
    "chatroom.controllers": ("tornado", "chatroom.views", *ABOVE_APP),
    "chatroom.views": ("redis", "peewee", "chatroom.models", *ABOVE_APP[1:]),
}
#: Only the command line imports the command line, the server and the operator wiring.
ONLY_FROM_CLI = (
    "chatroom.cli",
    "chatroom.server",
    "chatroom.operator_commands",
    "chatroom.archive_process",
)


def imports_of(source: str) -> set[str]:
    """Every absolute module a source file imports (``from a import b``: ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str) -> list[str]:
    """The imports of ``module`` (dotted name) that break the rules, as readable lines."""
    found = []
    imported = imports_of(source)
    for layer, forbidden in FORBIDDEN.items():
        if not _matches(module, layer):
            continue
        for name in sorted(imported):
            if any(_matches(name, prefix) for prefix in forbidden):
                if any(
                    module == view and _matches(name, model)
                    for view, model in VIEW_MODEL_EXCEPTIONS
                ):
                    continue
                found.append(f"{module} imports {name}")
    if not _matches(module, "chatroom.cli") and module not in (
        "chatroom.__main__",
        "chatroom.cli_operator",
        "chatroom.cli_files",
        "chatroom.cli_invites",
        "chatroom.cli_archive",
    ):
        for name in sorted(imported):
            if any(_matches(name, prefix) for prefix in ONLY_FROM_CLI):
                found.append(f"{module} imports {name} (only the command line may)")
    return found


def modules() -> list[tuple[str, Path]]:
    return [
        (".".join(path.relative_to(SRC).with_suffix("").parts), path)
        for path in sorted((SRC / "chatroom").rglob("*.py"))
    ]


def test_the_tree_keeps_the_import_rules():
    found = [line for name, path in modules() for line in violations(name, path.read_text())]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("chatroom.controllers.example", "import tornado.web\n"),
        ("chatroom.controllers.example", "from chatroom.views.base import BaseHandler\n"),
        ("chatroom.models.example", "from chatroom.controllers.errors import ChatError\n"),
        ("chatroom.models.example", "def f():\n    from chatroom.views import pages\n"),
        ("chatroom.views.example", "from chatroom.models import Room\n"),
        ("chatroom.views.example", "import redis.asyncio\n"),
        ("chatroom.views.files", "from chatroom.models.messages import MessageRepository\n"),
        ("chatroom.app", "from chatroom.server import serve\n"),
    ],
)
def test_a_broken_rule_is_caught(module, source):
    assert violations(module, source)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("chatroom.controllers.example", "from chatroom.models import Room\nimport orjson\n"),
        ("chatroom.views.example", "from chatroom.controllers.errors import ChatError\n"),
        ("chatroom.views.files", "from chatroom.models.files import sniff_type\n"),
        ("chatroom.models.example", "from chatroom.config import Config\n"),
        ("chatroom.cli_operator", "from chatroom.operator_commands import run_admin\n"),
    ],
)
def test_allowed_imports_pass(module, source):
    assert violations(module, source) == []


def test_architecture_names_every_module_and_only_real_ones():
    """docs/architecture.md's module table: every module of the tree, and none that is gone."""
    import re

    text = (SRC.parent / "docs" / "architecture.md").read_text()
    table = text[text.index("### Every module and its one job") :]
    table = table[: table.index("\n### ", 1)]
    named = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    package = SRC / "chatroom"
    tree = {str(p.relative_to(package)) for p in package.rglob("*.py")}
    tree |= {str(p.relative_to(package)) for p in (package / "static" / "js").glob("*.js")}
    assert sorted(tree - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - tree) == [], "docs/architecture.md names modules that do not exist"
