"""Profiling the server under load with py-spy, and reading the profiles.

``python -m benchmarks.run --profile DIR`` records every measured send phase of the
server (py-spy ``record --idle``, 100 Hz, collapsed stacks: ``*.txt``, which
speedscope.app and flamegraph.pl open as they are) and prints its hotspots.
``python -m benchmarks.profile FILE.txt`` prints them again.

Percentages are of the *busy* samples of the event-loop thread: samples idle in
``epoll`` and the database thread pool are left out (py-spy's own idle detection
does not work in every container, so this is done here).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
_SKIP = (
    "(<frozen runpy>)",
    "(click/",
    "(chatroom/cli.py)",
    "(chatroom/__main__.py)",
    "(chatroom/server.py)",
    "(asyncio/runners.py)",
    "run_until_complete",
    "run_forever",
    "(benchmarks/baseline_server.py)",
)


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    """``py-spy record`` of one process (and its children) for ``seconds``."""

    def __init__(self, pid: int, path: Path, seconds: float, subprocesses: bool = False) -> None:
        self.path = path
        self.seconds = seconds
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: pip install py-spy")
        cmd = [exe, "record", "--pid", str(pid), "--idle", "--rate", "100"]
        cmd += ["--duration", str(max(1, int(seconds))), "--format", "raw", "--output", str(path)]
        if subprocesses:
            cmd.append("--subprocesses")
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def wait(self) -> str:
        try:
            _, err = self.process.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if self.process.returncode != 0 or not self.path.exists():
            return f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"
        return summarize(self.path)


def hotspots(path: Path) -> dict:
    """Self and inclusive sample counts per function of the event-loop thread."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if frames[0].startswith("Thread._bootstrap"):
            continue  # the database/hashing thread pool (mostly idle waits)
        total += n
        if frames[-1].startswith(("EpollSelector.select", "select (selectors.py")):
            idle += n
            continue
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    return {"total": total, "idle": idle, "self": own, "inclusive": inclusive}


def summarize(path: Path, top: int = 15) -> str:
    h = hotspots(path)
    busy = h["total"] - h["idle"]
    if busy <= 0:
        return f"{path}: no busy samples"
    lines = [
        f"{path}: {h['total']} event-loop samples, "
        f"{100 * h['idle'] / h['total']:.0f}% idle in epoll; % of busy samples:",
        "  self:",
    ]
    lines += [f"    {100 * n / busy:5.1f}%  {f}" for f, n in h["self"].most_common(top)]
    lines.append("  inclusive:")
    shown = 0
    for f, n in h["inclusive"].most_common():
        if any(s in f for s in _SKIP) or f.startswith(("BaseEventLoop._run_once", "Handle._run")):
            continue
        lines.append(f"    {100 * n / busy:5.1f}%  {f}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarize(path, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
