"""LocalPresence: what this process holds in Redis's presence — (room, user) entries and
per-user socket counts, under the process's own token — kept in step with its sockets.

Redis is written when a user's first socket on this process joins a room or
their last one leaves it (one script each), never per socket or per heartbeat.
Each (room, user) has at most one Redis change in flight, so an ``enter`` and a
``leave`` can never be applied out of order; a change that failed is retried on
the next tick. Before a process writes to a room or a user's socket count, the
room or user is in its index, so that whoever sweeps the process after it dies
finds every entry it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from chatroom.controllers.connection import Connection
from chatroom.controllers.redis_outage import REDIS_DOWN
from chatroom.models import PresenceRepository
from chatroom.models.presence import new_process_token, room_member, user_member

log = logging.getLogger("chatroom.controllers.chat")

Announce = Callable[[str, str, str], Awaitable[None]]


class _Entry:
    """One user in one room on this process: their subscribed sockets here, and what
    Redis holds for them (``have``: the token it may be under; ``ok``: it surely is)."""

    __slots__ = ("busy", "fresh", "have", "ok", "sockets", "stale")

    def __init__(self) -> None:
        self.sockets = 0
        self.have: str | None = None
        self.ok = False
        self.stale: str | None = None  # an older token of ours that may still hold it
        self.busy: asyncio.Future | None = None
        self.fresh = False  # Redis made the user online; not announced yet


class LocalPresence:
    """This process's presence entries and socket counts, and its identity in Redis."""

    def __init__(
        self,
        presence: PresenceRepository,
        announce: Announce,
        connection_count: Callable[[], int],
        alive_ttl: float,
    ) -> None:
        self._repo = presence
        self._announce = announce
        self._connection_count = connection_count
        self.alive_ttl = alive_ttl
        #: This process's token in Redis; None until it first registers.
        self.token: str | None = None
        self._lock = asyncio.Lock()  # the token and the index change under it
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._uses: dict[str, int] = {}  # index member -> local holders (in flight too)
        self._indexed: set[str] = set()  # members in the index of ``token``
        self._dirty: set[tuple[str, str]] = set()  # entries whose last change failed
        self._claimed: dict[str, int] = {}  # conn_id -> user id, counted in Redis
        self._sockets: dict[int, int] = {}  # user id -> sockets counted
        self._socket_ops: dict[int, int] = {}  # user id -> claims/releases in flight
        self._dirty_users: set[int] = set()
        self._background: set[asyncio.Task] = set()

    # -- identity and index ------------------------------------------------------

    async def _index(self, member: str) -> str:
        """The token to write ``member``'s entries under, once it is in its index."""
        if self.token is not None and member in self._indexed:
            return self.token
        async with self._lock:
            if self.token is None:
                await self._new_identity()
            if member not in self._indexed:
                await self._repo.index(self.token, [member])
                self._indexed.add(member)
            return self.token

    async def _new_identity(self) -> None:
        """Register a fresh token (the lock is held), with the whole index of the old one."""
        token = new_process_token()
        await self._repo.register(token, self._connection_count(), self.alive_ttl)
        self.token, self._indexed = token, set()
        members = list(self._uses)
        await self._repo.index(token, members)
        self._indexed.update(members)

    async def heartbeat(self) -> None:
        """The tick's one write: renew the liveness key, or take a new identity when it
        expired (this process stalled, or Redis lost it) and write everything again."""
        if self.token is not None and await self._repo.heartbeat(
            self.token, self._connection_count(), self.alive_ttl
        ):
            return
        async with self._lock:
            stalled = self.token is not None
            await self._new_identity()
        if stalled:
            log.warning("this process's presence expired; announcing it again")
            self._dirty.update(self._entries)
            self._dirty_users.update(u for u, n in self._sockets.items() if n)

    def _use(self, member: str) -> None:
        self._uses[member] = self._uses.get(member, 0) + 1

    def _unuse(self, member: str) -> None:
        left = self._uses[member] - 1
        if left:
            self._uses[member] = left
        else:
            del self._uses[member]

    async def repair(self) -> None:
        """Once a tick: drop unused members from the index, retry failed changes."""
        async with self._lock:
            unused = [m for m in self._indexed if m not in self._uses]
            if unused and self.token is not None:
                self._indexed.difference_update(unused)
                await self._repo.unindex(self.token, unused)
        for key in list(self._dirty):
            await self.settle(*key)
            await self.announce_online(*key)
        for user_id in list(self._dirty_users):
            if not self._socket_ops.get(user_id) and self.token is not None:
                await self._repo.set_sockets(user_id, self.token, self._sockets.get(user_id, 0))
                self._dirty_users.discard(user_id)

    async def retire(self) -> list[tuple[str, str]]:
        """Shutdown: remove whatever this process still holds; who went offline."""
        async with self._lock:
            token, self.token = self.token, None
            if token is None:
                return []
            return await self._repo.sweep(token)

    # -- rooms -----------------------------------------------------------------

    def add(self, room: str, user: str) -> None:
        """A socket of ``user`` subscribed to ``room`` here (``settle`` writes Redis)."""
        entry = self._entries.get((room, user))
        if entry is None:
            entry = self._entries[(room, user)] = _Entry()
            self._use(room_member(room))
        entry.sockets += 1

    def remove(self, room: str, user: str) -> None:
        """A socket of ``user`` left ``room`` (``settle`` writes Redis)."""
        entry = self._entries.get((room, user))
        if entry is not None and entry.sockets > 0:
            entry.sockets -= 1

    def forget(self, room: str, users: list[str]) -> None:
        """``remove`` each, and settle them in the background (a deleted room)."""
        for user in users:
            self.remove(room, user)
            task = asyncio.create_task(self._settle_quietly(room, user))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _settle_quietly(self, room: str, user: str) -> None:
        with contextlib.suppress(*REDIS_DOWN):
            await self.settle(room, user, wait=False)

    async def settle(self, room: str, user: str, wait: bool = True) -> None:
        """Bring Redis in step with this process for (room, user); announces the user
        ``online``/``offline`` when the change made them so. Raises on a Redis error
        (the change is retried on the next tick).

        One change at a time: while one runs, it also makes ours (unless it fails),
        and ``wait=False`` returns at once instead of waiting for it.
        """
        key = (room, user)
        while True:
            entry = self._entries.get(key)
            if entry is None:
                self._dirty.discard(key)
                return
            if entry.busy is None:
                break
            if not wait:
                self._dirty.add(key)  # checked again on the next tick, should it fail
                return
            await asyncio.shield(entry.busy)
        done = entry.busy = asyncio.get_running_loop().create_future()
        try:
            await self._converge(room, user, entry)
            self._dirty.discard(key)
        except BaseException:
            self._dirty.add(key)
            raise
        finally:
            entry.busy = None
            done.set_result(None)
            if entry.sockets == 0 and entry.have is None and entry.stale is None:
                del self._entries[key]
                self._unuse(room_member(room))

    async def announce_online(self, room: str, user: str) -> None:
        """Announce the user online in ``room`` if a change of ours made them so and
        nobody said it yet: the join does, once its ``joined`` frame is out."""
        entry = self._entries.get((room, user))
        if entry is not None and entry.fresh and entry.sockets > 0:
            entry.fresh = False
            await self._announce(room, user, "online")

    async def _converge(self, room: str, user: str, entry: _Entry) -> None:
        repo = self._repo
        while True:
            if entry.sockets > 0 and not (entry.ok and entry.have == self.token):
                token = await self._index(room_member(room))
                if entry.have is not None and entry.have != token:
                    entry.stale = entry.have  # a late write under an expired token
                entry.have, entry.ok = token, False
                if await repo.enter(room, user, token):
                    entry.fresh = True  # announced by ``announce_online``
                entry.ok = True
            elif entry.sockets == 0 and entry.have is not None:
                last = await repo.leave(room, user, entry.have)
                entry.have, entry.ok, entry.fresh = None, False, False
                if last:
                    await self._announce(room, user, "offline")
            elif entry.stale is not None:
                stale = entry.stale
                last = await repo.leave(room, user, stale)
                if entry.stale == stale:
                    entry.stale = None
                if last:
                    await self._announce(room, user, "offline")
            else:
                return

    # -- sockets per user ------------------------------------------------------------

    async def claim_socket(self, conn: Connection, cap: int) -> bool:
        """Count a new socket against its user's cap (across processes); False when the
        user holds ``cap`` already."""
        user_id, member = conn.account.id, user_member(conn.account.id)
        self._use(member)
        self._socket_ops[user_id] = self._socket_ops.get(user_id, 0) + 1
        admitted = False
        try:
            token = await self._index(member)
            try:
                admitted = await self._repo.claim_socket(user_id, token, cap)
            except BaseException:
                self._dirty_users.add(user_id)  # counted or not: set it on the next tick
                raise
            if admitted:
                self._claimed[conn.conn_id] = user_id
                self._sockets[user_id] = self._sockets.get(user_id, 0) + 1
                if token != self.token:  # counted under a token given up meanwhile
                    self._dirty_users.add(user_id)
            return admitted
        finally:
            self._socket_done(user_id)
            if not admitted:
                self._unuse(member)

    async def release_socket(self, conn: Connection) -> None:
        """Uncount a socket that closed (nothing when it was never counted)."""
        user_id = self._claimed.pop(conn.conn_id, None)
        if user_id is None:
            return
        left = self._sockets[user_id] - 1
        if left:
            self._sockets[user_id] = left
        else:
            del self._sockets[user_id]
        self._socket_ops[user_id] = self._socket_ops.get(user_id, 0) + 1
        try:
            if self.token is not None:
                await self._repo.release_socket(user_id, self.token)
        except BaseException:
            self._dirty_users.add(user_id)
            raise
        finally:
            self._socket_done(user_id)
            self._unuse(user_member(user_id))

    def _socket_done(self, user_id: int) -> None:
        left = self._socket_ops[user_id] - 1
        if left:
            self._socket_ops[user_id] = left
        else:
            del self._socket_ops[user_id]
