"""SessionWatch: which open connections belong to which session, and closing them when
the session ends (logout, password change, a disabled user) or expires.

Ended sessions and users are remembered for ``ENDED_MEMORY_SECONDS``, to refuse a
socket whose handshake looked its session up just before the end and registers
just after.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from chatroom.controllers.accounts import SessionInfo
from chatroom.controllers.connection import Connection

#: How long an ended session or user is remembered (see the module docstring).
ENDED_MEMORY_SECONDS = 60.0
#: Close reasons (with code 1008) of a socket whose session ended or expired.
SESSION_ENDED = "session ended"
SESSION_EXPIRED = "session expired"

#: ("session", token hash) or ("user", user id).
Ended = tuple[str, object]


@dataclass(slots=True)
class _Watched:
    session_hash: str = ""
    expires: float = math.inf  # epoch seconds


class SessionWatch:
    """The sessions of this process's connections; closes (1008) those that end."""

    def __init__(self) -> None:
        self._watched: dict[Connection, _Watched] = {}
        # ("session", token hash) or ("user", id) -> time.monotonic() it ended here.
        self._ended: dict[Ended, float] = {}
        # No watched session expires before this (epoch seconds): until then the
        # periodic check needs no walk over every connection (issue 17, idle CPU).
        self._next_expiry = math.inf

    def watch(self, conn: Connection, session: SessionInfo | None) -> bool:
        """Watch a new connection (opened with ``session``, if any); False when that
        session ended after its handshake looked it up (the caller closes it)."""
        watched = self._watched[conn] = _Watched()
        if session is None:
            return True
        watched.session_hash, watched.expires = session.token_hash, session.expires
        self._next_expiry = min(self._next_expiry, session.expires)
        return not self._ended_since(session)

    def unwatch(self, conn: Connection) -> None:
        self._watched.pop(conn, None)

    def end(self, which: Ended, reason: str = SESSION_ENDED) -> None:
        """Close (1008) the connections of one session (by token hash) or of one user."""
        self._ended[which] = time.monotonic()
        kind, value = which
        for conn, watched in list(self._watched.items()):
            if (watched.session_hash if kind == "session" else conn.account.id) == value:
                conn.close(1008, reason)

    def close_expired(self) -> None:
        """Close (1008) the connections whose session's time (--session-days) is up."""
        now = time.time()
        if now < self._next_expiry:
            return
        next_expiry = math.inf
        for conn, watched in list(self._watched.items()):
            if watched.expires <= now:
                watched.expires = math.inf  # closed once
                conn.close(1008, SESSION_EXPIRED)
            else:
                next_expiry = min(next_expiry, watched.expires)
        self._next_expiry = next_expiry

    def forget_old(self, now: float | None = None) -> None:
        """Forget the sessions and users that ended over ``ENDED_MEMORY_SECONDS`` ago."""
        forgotten = (time.monotonic() if now is None else now) - ENDED_MEMORY_SECONDS
        for key in [k for k, t in self._ended.items() if t < forgotten]:
            del self._ended[key]

    def _ended_since(self, session: SessionInfo) -> bool:
        """Whether the session, or all its user's sessions, ended after it was looked up."""
        if ("session", session.token_hash) in self._ended:
            return True
        return self._ended.get(("user", session.account.id), -math.inf) >= session.checked
