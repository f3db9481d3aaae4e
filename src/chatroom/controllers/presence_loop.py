"""PresenceLoop: this process's presence in Redis, kept fresh on a timer.

Every ``PRESENCE_INTERVAL_SECONDS`` it refreshes the heartbeat of each local
subscription (restoring one that expired meanwhile and announcing it online),
sweeps out the entries of dead processes (announcing them offline), keeps this
process's sockets counted against their users' socket caps, reports its
connection count, and then, on the same tick, runs the housekeeping it is given
(read markers, session expiry, idle limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chatroom.controllers import frames
from chatroom.controllers.connection import Connection
from chatroom.controllers.errors import storage_guard
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.redis_outage import REDIS_DOWN
from chatroom.models import MessageRepository, PresenceRepository

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: Presence heartbeats and the sweep for dead connections run this often.
PRESENCE_INTERVAL_SECONDS = 3.0


class PresenceLoop:
    """Presence announcements, heartbeats, the sweep and the socket-cap entries."""

    def __init__(
        self,
        hub: FanoutHub,
        messages: MessageRepository,
        presence: PresenceRepository,
        connection_count: Callable[[], int],
    ) -> None:
        self._hub = hub
        self._messages = messages
        self._presence = presence
        self._connection_count = connection_count
        # The sockets admitted under the socket cap, by conn_id: their entries are
        # kept fresh. The chat adds each once it is sure the socket is still open.
        self.counted: dict[str, Connection] = {}

    async def claim_socket(self, conn: Connection, cap: int) -> bool:
        """Count a new socket against its user's cap (in Redis, across processes);
        False when the user already holds ``cap``."""
        with storage_guard():
            return await self._presence.claim_socket(conn.account.id, conn.conn_id, cap)

    async def release_socket(self, conn: Connection) -> None:
        """Uncount a socket that closed (or was claimed for a socket closed meanwhile)."""
        self.counted.pop(conn.conn_id, None)
        with contextlib.suppress(*REDIS_DOWN):
            await self._presence.release_socket(conn.account.id, conn.conn_id)

    async def announce(self, room: str, user: str, state: str) -> None:
        """Tell every process that ``user`` went ``online`` or ``offline`` in ``room``."""
        with contextlib.suppress(*REDIS_DOWN):
            await self._messages.events.publish(room, frames.presence(room, user, state))

    async def run(self, housekeeping: Callable[[], Awaitable[None]]) -> None:
        """Refresh, sweep and report forever; ``housekeeping`` after each tick."""
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
        """One round: heartbeats (and restores), the sweep, socket entries, the report."""
        for room, user, conn_id in await self._presence.refresh(self._hub.presence_entries()):
            if self._hub.is_subscribed(room, conn_id) and await self._presence.restore(
                room, user, conn_id
            ):
                await self.announce(room, user, "online")
        for room, user in await self._presence.sweep():
            await self.announce(room, user, "offline")
        await self._refresh_sockets()
        await self._presence.report_connections(self._connection_count())

    async def _refresh_sockets(self) -> None:
        """Keep this process's sockets counted against their users' socket caps."""
        entries = [(conn.account.id, conn_id) for conn_id, conn in self.counted.items()]
        for user_id, conn_id in await self._presence.refresh_sockets(entries):
            if conn_id in self.counted:  # not closed meanwhile
                await self._presence.restore_socket(user_id, conn_id)
