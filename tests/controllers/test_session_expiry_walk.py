"""The periodic session-expiry check walks the connections only when one may be due
(issue 17: idle CPU with ten thousand sockets)."""

from __future__ import annotations

import time

from chatroom.controllers.accounts import Account, SessionInfo
from chatroom.controllers.session_watch import SESSION_EXPIRED, SessionWatch


class Conn:
    def __init__(self, n: int) -> None:
        self.account = Account(n, f"u{n}", None)  # type: ignore[arg-type]
        self.closed: tuple[int, str] | None = None

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def session(n: int, expires: float) -> SessionInfo:
    return SessionInfo(Account(n, f"u{n}", None), f"h{n}", expires, time.monotonic())  # type: ignore[arg-type]


class CountingDict(dict):
    """A dict that counts how often it is walked."""

    walks = 0

    def items(self):
        CountingDict.walks += 1
        return super().items()


def test_expired_sessions_close_and_the_walk_waits_for_the_next_expiry() -> None:
    watch = SessionWatch()
    watch._watched = CountingDict()
    now = time.time()
    soon, later = Conn(1), Conn(2)
    assert watch.watch(soon, session(1, now + 0.2))
    assert watch.watch(later, session(2, now + 3600))
    assert watch.watch(Conn(3), None)  # no session: never expires
    walks = CountingDict.walks
    for _ in range(5):
        watch.close_expired()
    assert CountingDict.walks == walks  # nothing due: no walk
    time.sleep(0.25)
    watch.close_expired()
    assert soon.closed == (1008, SESSION_EXPIRED) and later.closed is None
    walks = CountingDict.walks
    watch.close_expired()
    assert CountingDict.walks == walks  # next due in an hour
    watch.unwatch(soon)
    late = Conn(4)
    assert watch.watch(late, session(4, now))  # already due when watched
    watch.close_expired()
    assert late.closed == (1008, SESSION_EXPIRED)
