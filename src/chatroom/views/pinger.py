"""Pinger: one timer per process pings every open WebSocket and closes those whose pong
does not come back in time, instead of Tornado's ping task per socket.

Tornado's keepalive (``websocket_ping_interval``) runs an ``asyncio.Task`` per
socket, sleeping between pings: ~1.5 KiB of task, coroutine, timer and future
for each idle connection. Here every ``interval`` seconds one callback writes a
ping frame to each open socket, and ``timeout`` seconds later a second one
closes (1000, "ping timed out", as Tornado does) the sockets that have not
answered since. The only per-socket cost is an entry in a set.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Pingable(Protocol):
    """A WebSocket the pinger keeps alive (``ChatSocketHandler``)."""

    def send_ping(self) -> None:
        """Write a ping frame now (nothing once the socket is closing)."""

    def ping_timed_out(self) -> None:
        """No pong since the last ping, within the timeout: close the socket."""


class Pinger:
    """Pings every registered socket each ``interval`` seconds; ``timeout`` for the pong."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = min(timeout, interval) if timeout > 0 else 0.0
        self._sockets: set[Pingable] = set()
        self._awaiting: set[Pingable] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._check_timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, socket: Pingable) -> None:
        """Keep ``socket`` alive from now on (its first ping comes within ``interval``)."""
        if self.interval <= 0:
            return
        self._sockets.add(socket)
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.interval, self._ping_all)

    def discard(self, socket: Pingable) -> None:
        """The socket closed."""
        self._sockets.discard(socket)
        self._awaiting.discard(socket)

    def pong(self, socket: Pingable) -> None:
        """A pong came from ``socket``."""
        self._awaiting.discard(socket)

    def _ping_all(self) -> None:
        loop = asyncio.get_running_loop()
        if self._check_timer is not None:
            # Timers due at the same moment run in no set order: with timeout ==
            # interval the check of the last round may still be waiting. Run it first.
            self._check_timer.cancel()
            self._check()
        if not self._sockets:
            self._timer = None  # started again by the next ``add``
            return
        self._timer = loop.call_later(self.interval, self._ping_all)
        if self.timeout > 0:
            self._awaiting = set(self._sockets)
            self._check_timer = loop.call_later(self.timeout, self._check)
        for socket in list(self._sockets):
            socket.send_ping()

    def _check(self) -> None:
        self._check_timer = None
        pinged, self._awaiting = self._awaiting, set()
        for socket in pinged:
            if socket in self._sockets:
                socket.ping_timed_out()

    def stop(self) -> None:
        for timer in (self._timer, self._check_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._check_timer = None
