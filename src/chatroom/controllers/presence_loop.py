"""PresenceLoop: this process's presence in Redis, kept alive on a timer.

Every ``PRESENCE_INTERVAL_SECONDS`` it renews the process's liveness key (one
write, whatever the number of sockets and rooms), retries the presence changes
that failed, sweeps out the entries of processes whose liveness expired
(announcing their users offline), and then, on the same tick, runs the
housekeeping it is given (read markers, session expiry, idle limits). The
entries themselves are written by ``LocalPresence`` as sockets join and leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chatroom.controllers import frames
from chatroom.controllers.connection import Connection
from chatroom.controllers.errors import storage_guard
from chatroom.controllers.presence_local import LocalPresence
from chatroom.controllers.redis_outage import REDIS_DOWN
from chatroom.models import MessageRepository, PresenceRepository
from chatroom.models.presence import ALIVE_TTL_SECONDS

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: The liveness heartbeat and the sweep for dead processes run this often.
PRESENCE_INTERVAL_SECONDS = 3.0


class PresenceLoop:
    """Presence announcements, the heartbeat, the sweep and the socket-cap counts."""

    def __init__(
        self,
        messages: MessageRepository,
        presence: PresenceRepository,
        connection_count: Callable[[], int],
        alive_ttl: float = ALIVE_TTL_SECONDS,
    ) -> None:
        self._messages = messages
        self._presence = presence
        self.local = LocalPresence(presence, self.announce, connection_count, alive_ttl)

    async def claim_socket(self, conn: Connection, cap: int) -> bool:
        """Count a new socket against its user's cap (in Redis, across processes);
        False when the user already holds ``cap``."""
        with storage_guard():
            return await self.local.claim_socket(conn, cap)

    async def release_socket(self, conn: Connection) -> None:
        """Uncount a socket that closed (or was claimed for a socket closed meanwhile)."""
        with contextlib.suppress(*REDIS_DOWN):
            await self.local.release_socket(conn)

    async def announce(self, room: str, user: str, state: str) -> None:
        """Tell every process that ``user`` went ``online`` or ``offline`` in ``room``."""
        with contextlib.suppress(*REDIS_DOWN):
            await self._messages.events.publish(room, frames.presence(room, user, state))

    async def run(self, housekeeping: Callable[[], Awaitable[None]]) -> None:
        """Heartbeat, repair and sweep forever; ``housekeeping`` after each tick."""
        while True:
            await asyncio.sleep(PRESENCE_INTERVAL_SECONDS)
            try:
                await self.tick()
            except REDIS_DOWN as exc:
                log.warning("presence refresh failed: %s", exc)
            except Exception:
                log.exception("presence refresh failed")
            await housekeeping()

    async def tick(self) -> None:
        """One round: the heartbeat, retries of failed changes, the sweep."""
        local = self.local
        await local.heartbeat()
        await local.repair()
        await self.sweep()

    async def sweep(self) -> None:
        """Remove the entries of every process whose liveness expired, announcing its
        users offline; each dead process is swept by one process only."""
        me = self.local.token
        for token in await self._presence.dead_processes(exclude=me):
            if await self._presence.claim_sweep(token, by=me or "-"):
                log.info("sweeping the presence of a stopped process (%s)", token)
                for room, user in await self._presence.sweep(token):
                    await self.announce(room, user, "offline")

    async def retire(self) -> None:
        """Shutdown: take this process's remaining entries out of Redis at once."""
        for room, user in await self.local.retire():
            await self.announce(room, user, "offline")
