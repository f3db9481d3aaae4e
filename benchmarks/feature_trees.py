"""The trees that ``benchmarks.features`` measures: ``--tree LABEL=REV[:SERVE ARGS]`` and
``--feature NAME=BEFORE,AFTER[,THRESHOLD]`` parsed, the round's defaults, each revision
extracted once with ``git archive COMMIT src`` (a COMMIT file beside it, as
``--chatroom-src`` expects), its ``serve`` options checked and its accounts made.

Every tree gets its own accounts fixture (the schema of an older tree may differ), and
the same server settings: the benchmark's lifted limits, plus the tree's own arguments
and, with ``--archiver``, that setting where the tree's ``serve`` has the option.
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import servers
from benchmarks.features_report import Feature
from benchmarks.scenarios import Bench

ROOT = Path(__file__).resolve().parent.parent
#: ``--tree`` value naming this checkout's ``src`` as it is (uncommitted changes included).
WORKTREE = "worktree"
#: The trees measured by default: the commit on ``main``'s first-parent line just before
#: and just after each feature landed, 0.1.0 and ``main`` (with its archiver on and off).
DEFAULT_TREES = (
    "0.1.0=3b5c509",
    "files-before=dd03b95",  # issue 15: files and images (SPEC §9), merged in 6962dbb
    "files-after=6962dbb",
    "archive-before=d34037b",  # issue 14: the SQL archive, merged in 505093c
    "archive-after=505093c",
    "edits-before=1a93bb1",  # issue 12 (SPEC §5): the x12u merge 32e1b65 brought x12s's server
    "edits-after=32e1b65",
    "moderation-before=994bcaf",  # issue 13: bans/mutes/read-only in the send script, 03d944c
    "moderation-after=03d944c",
    "main=main",
    "main-archiver-off=main:--archiver off",
)
DEFAULT_FEATURES = (
    "edits and reactions (issue 12)=edits-before,edits-after,0.95",
    "moderation checks in the send script (issue 13)=moderation-before,moderation-after,0.95",
    "the SQL archive as it landed (issue 14)=archive-before,archive-after,0.90",
    "files (issue 15)=files-before,files-after,0.95",
    "the archiver on, now (issue 14)=main-archiver-off,main,0.90",
    "the whole round, 0.1.0 to main=0.1.0,main,",
)
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Tree:
    """A labelled tree: a git revision (or a ``src`` directory, or ``worktree``) and
    extra ``chatroom serve`` arguments."""

    label: str
    rev: str
    args: tuple[str, ...] = ()


def parse_tree(text: str) -> Tree:
    """``LABEL=REV[:SERVE ARGS]``, e.g. ``main-off=main:--archiver off``."""
    label, sep, rest = text.partition("=")
    rev, _, args = rest.partition(":")
    label, rev = label.strip(), rev.strip()
    if not sep or not rev or not _LABEL.match(label):
        raise ValueError(f"--tree wants LABEL=REV[:SERVE ARGS], e.g. old=3b5c509 (got {text!r})")
    return Tree(label, rev, tuple(shlex.split(args)))


def parse_feature(text: str) -> Feature:
    """``NAME=BEFORE,AFTER[,THRESHOLD]``; an empty threshold: reported, not judged."""
    name, sep, rest = text.rpartition("=")
    parts = [p.strip() for p in rest.split(",")]
    if not sep or not name.strip() or len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f"--feature wants NAME=BEFORE,AFTER[,THRESHOLD] (got {text!r})")
    threshold = float(parts[2]) if len(parts) == 3 and parts[2] else None
    if len(parts) == 2:
        threshold = 0.95
    return Feature(name.strip(), parts[0], parts[1], threshold)


def plan(tree_args: list[str], feature_args: list[str]) -> tuple[list[Tree], list[Feature]]:
    """The trees and features to measure: the defaults, or the ones given; with trees but
    no features, each tree against the one before it (0.95)."""
    trees = [parse_tree(t) for t in (tree_args or DEFAULT_TREES)]
    labels = [t.label for t in trees]
    if len(set(labels)) != len(labels):
        raise ValueError(f"tree labels must differ: {labels}")
    if feature_args:
        features = [parse_feature(f) for f in feature_args]
    elif tree_args:
        features = [Feature(f"{a} → {b}", a, b) for a, b in itertools.pairwise(labels)]
    else:
        features = [parse_feature(f) for f in DEFAULT_FEATURES]
    for f in features:
        missing = {f.before, f.after} - set(labels)
        if missing:
            raise ValueError(f"feature {f.name!r} names trees not in the list: {sorted(missing)}")
    return trees, features


def git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if out.returncode:
        raise ValueError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class Prepared:
    """A tree ready to serve: its ``src``, commit, accounts fixture and serve arguments."""

    tree: Tree
    src: str
    commit: str | None
    fixture: servers.ChatroomFixture | None = None
    archiver: str = ""
    extra: list[str] = field(default_factory=list)


def extract(tree: Tree, into: Path, done: dict[str, str]) -> tuple[str, str | None]:
    """The tree's ``src`` directory and commit; a revision is ``git archive``d once into
    ``into/<commit>`` (``done``: commit -> src already extracted) with a COMMIT file."""
    if tree.rev == WORKTREE:
        return str(ROOT / "src"), git("rev-parse", "--short", "HEAD") + "+worktree"
    path = Path(tree.rev)
    if path.is_dir():
        src = path if (path / "chatroom").is_dir() else path / "src"
        marker = src.parent / "COMMIT"
        return str(src.resolve()), marker.read_text().strip() if marker.exists() else None
    commit = git("rev-parse", "--short", "--verify", f"{tree.rev}^{{commit}}")
    if commit not in done:
        dest = into / commit
        dest.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(ROOT), "archive", commit, "src"], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
        if archive.wait():
            raise ValueError(f"git archive {commit} src failed")
        (dest / "COMMIT").write_text(commit + "\n")
        done[commit] = str(dest / "src")
    return done[commit], commit


def use(bench: Bench, tree: Prepared) -> None:
    """Make ``tree`` the chatroom that ``bench.server`` starts next."""
    servers.CHATROOM_SRC = tree.src
    servers.CHATROOM_ARGS = list(tree.extra)
    bench.fixture = tree.fixture


async def prepare(bench: Bench, trees: list[Tree], archiver: str | None) -> list[Prepared]:
    """Extract every tree, check its serve arguments, make its accounts (each tree its
    own: the schema may differ)."""
    done: dict[str, str] = {}
    out, fixtures = [], {}
    for tree in trees:
        src, commit = extract(tree, bench.workspace.path / "trees", done)
        p = Prepared(tree, src, commit, extra=list(tree.args))
        servers.CHATROOM_SRC = src
        for arg in tree.args:
            if arg.startswith("--") and not servers.serve_supports(arg.split("=")[0]):
                raise ValueError(f"tree {tree.label}: chatroom serve has no {arg.split('=')[0]}")
        has_option = servers.serve_supports("--archiver")
        if archiver and has_option and "--archiver" not in " ".join(tree.args):
            p.extra += ["--archiver", archiver]
        if has_option:
            p.archiver = option_value(p.extra, "--archiver") or "on"
        else:  # trees before the option: the archiver runs in-process if there is one
            archive = Path(src) / "chatroom" / "controllers" / "archive.py"
            p.archiver = "on (no option)" if archive.exists() else "none"
        if src not in fixtures:
            root = bench.workspace.path / f"accounts-{len(fixtures)}"
            root.mkdir()
            fixtures[src] = servers.ChatroomFixture(root)
        p.fixture = fixtures[src]
        use(bench, p)
        await p.fixture.ensure(
            min(bench.s.steady_clients, bench.s.users_cap), bench.s.steady_rooms, log=bench.log
        )
        bench.log(f"  tree {tree.label}: {commit or src}, archiver {p.archiver}, serve {p.extra}")
        out.append(p)
    return out


def option_value(args: list[str], option: str) -> str | None:
    """The last value given to ``option`` in ``args`` (``--opt v`` or ``--opt=v``)."""
    value = None
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value
