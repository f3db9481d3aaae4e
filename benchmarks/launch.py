"""``python -m benchmarks.launch [--cpus 0,1] -- CMD...``: pin to CPUs, raise the
open-files soft limit to the hard one, then ``exec`` CMD (same pid, so the
benchmark samples the real server process and everything it starts)."""

from __future__ import annotations

import argparse
import os

from benchmarks.generator import raise_nofile_limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpus", default="", help="comma-separated CPU numbers")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    raise_nofile_limit()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
