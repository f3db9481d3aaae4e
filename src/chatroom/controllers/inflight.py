"""Shutdown of client verbs in flight: let them finish, or answer them ``unavailable``.

A verb that answers a client frame is marked with ``client_verb``; while it runs
its task is in flight. At shutdown ``InFlight.finish`` waits for those tasks a
while, then cancels them, which ``client_verb`` turns into ``unavailable`` so
that the client hears an answer on its still-open socket.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Protocol

from chatroom.controllers.errors import UnavailableError

SHUTTING_DOWN = "the server is shutting down; send again"


class InFlight:
    """The tasks of client verbs running now, and whether the process is stopping."""

    def __init__(self) -> None:
        # Shutdown: set first, so sends waiting to retry are answered at once.
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()

    async def finish(self, timeout: float) -> None:
        """Let the verbs in flight finish; cancel those still running after ``timeout``.

        A send waiting to retry after a Redis failure gives up at once; a verb
        still inside a Redis call after ``timeout`` is cancelled, which
        ``client_verb`` turns into ``unavailable`` too. Either way its socket is
        still open to hear the answer.
        """
        self.stopping.set()
        for _ in range(2):
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=timeout)
            for task in set(self.tasks):
                task.cancel()


class _Serving(Protocol):
    in_flight: InFlight


def client_verb(verb: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Marks a verb that answers a client frame: while it runs its task is in flight,
    and a cancellation by ``InFlight.finish`` at shutdown becomes ``unavailable``."""

    @functools.wraps(verb)
    async def handle(self: _Serving, *args: object, **kwargs: object) -> None:
        task = asyncio.current_task()
        if task is None:
            return await verb(self, *args, **kwargs)
        in_flight = self.in_flight
        in_flight.tasks.add(task)
        try:
            return await verb(self, *args, **kwargs)
        except asyncio.CancelledError:
            if not in_flight.stopping.is_set():
                raise
            # The client hears unavailable and may resend (a send with its client_id
            # is deduplicated if it was stored after all).
            if hasattr(task, "uncancel"):
                task.uncancel()
            raise UnavailableError(SHUTTING_DOWN) from None
        finally:
            in_flight.tasks.discard(task)

    return handle
