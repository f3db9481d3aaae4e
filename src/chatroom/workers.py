"""Forking worker processes (``--processes N``) and supervising them from the parent.

Unlike ``tornado.process.fork_processes``, the parent forwards SIGTERM/SIGINT to
its workers, so stopping the parent stops everything and leaves no orphan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: A worker that dies unexpectedly is replaced, at most this many times in a row.
MAX_RESTARTS = 20
#: The n-th restart in a row waits n times the first delay, at most the second.
RESTART_BACKOFF = (0.2, 2.0)


def fork_workers(
    count: int,
    on_other_child_exit: Callable[[int], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> int | None:
    """Fork ``count`` workers. In each worker, return its index (0..count-1).

    In the parent, supervise them and return None once all have exited after a
    stop signal (or the restart budget ran out). The parent reaps every child;
    ``on_other_child_exit(pid)`` hears of those that are not workers (the
    embedded Redis, the archiver process), so they can be restarted;
    ``on_stop()`` runs when the workers are told to stop (the archiver stops too).
    """
    children: dict[int, int] = {}
    stopping = False

    def start(index: int) -> bool:
        pid = os.fork()
        if pid == 0:
            return True
        children[pid] = index
        return False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if on_stop is not None:
            on_stop()

    for index in range(count):
        if start(index):
            return index
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    restarts = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is None:
            if on_other_child_exit is not None and not stopping:
                on_other_child_exit(pid)
            continue
        if stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            continue
        restarts += 1
        if restarts > MAX_RESTARTS:
            log.error("worker %d exited with %d; restart budget spent, stopping", index, code)
            forward(signal.SIGTERM, None)
            continue
        log.warning("worker %d exited with %d; starting a new one", index, code)
        time.sleep(min(restarts * RESTART_BACKOFF[0], RESTART_BACKOFF[1]))
        if start(index):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            return index
    return None
