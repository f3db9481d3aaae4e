"""The open-files limit: raised as far as the hard limit allows when ``serve`` starts,
and a warning when it is still too low for ``--max-connections``.

Every WebSocket is a file descriptor. Many systems start a process with a soft
limit of 1,024 (the hard limit is often far higher); past it, accepting a
connection fails and the listener spins on the error.
"""

from __future__ import annotations

import contextlib
import logging

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("chatroom")

#: Descriptors a process needs besides its WebSockets: listening sockets, its pool
#: of Redis connections (64), database connections, uploads being written, logs.
RESERVED_FDS = 256
#: Where a soft limit stops when the hard one is "unlimited" (Linux refuses more than
#: fs.nr_open, 1,048,576 by default).
UNLIMITED_CAP = 1 << 20


def raise_open_files_limit() -> tuple[int, int] | None:
    """Raise the soft open-files limit to the hard one; the (soft, hard) limits after,
    None where the platform has no such limit."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def needed_open_files(max_connections: int) -> int:
    """Descriptors one process needs to hold ``max_connections`` sockets."""
    return max_connections + RESERVED_FDS


def check_open_files(max_connections: int) -> int | None:
    """Raise the limit, and log a warning when it cannot fit ``max_connections``
    sockets; the soft limit now (None where there is none)."""
    limits = raise_open_files_limit()
    if limits is None:
        return None
    soft, hard = limits
    needed = needed_open_files(max_connections)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "the open-files limit is %d (hard limit %d), below the ~%d that "
            "--max-connections %d needs: past about %d sockets a process cannot accept "
            "connections. Raise the limit (ulimit -n, systemd LimitNOFILE=, docker "
            "--ulimit nofile=) or lower --max-connections.",
            soft,
            hard,
            needed,
            max_connections,
            max(0, soft - RESERVED_FDS),
        )
    else:
        log.debug("open-files limit %d (room for --max-connections %d)", soft, max_connections)
    return soft
