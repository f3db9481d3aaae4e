"""ConnectionRegistry: this process's open connections and the rooms each one joined.

A connection is admitted under its user's socket cap (counted in Redis, across
every process) and watched for the end of its session; it joins a room's live
stream through the fan-out hub (events are held back until ``joined`` is out),
with a presence entry and the history page it gets — the room's full history goes
to a connection once, later joins get what is new since the newest id it has —
and, with ``since_rev``, the changes since; the first connection of a user in a
room announces them ``online``. Leaving (or closing) undoes it and announces
``offline`` when it was the user's last connection in the room.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import TypeVar

from chatroom.controllers import frames
from chatroom.controllers.accounts import SessionInfo
from chatroom.controllers.connection import Connection, ConnectionState
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.errors import RateLimitedError, TooManyConnectionsError, storage_guard
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.limits import SendLimiter, SocketLimits
from chatroom.controllers.presence_loop import PresenceLoop
from chatroom.controllers.redis_outage import REDIS_DOWN
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.session_watch import SESSION_ENDED, SessionWatch
from chatroom.models import HistoryPage, MessageRepository, PresenceRepository

T = TypeVar("T")


class ConnectionRegistry:
    """Admits, tracks, subscribes and forgets this process's connections."""

    def __init__(
        self,
        hub: FanoutHub,
        messages: MessageRepository,
        presence: PresenceRepository,
        limiter: SendLimiter,
        sessions: SessionWatch,
        sockets_per_user: int,
        epochs: RoomEpochs,
    ) -> None:
        self.states: dict[Connection, ConnectionState] = {}
        self._hub = hub
        self._messages = messages
        self._presence = presence
        self._limiter = limiter
        self._sessions = sessions
        self._sockets_per_user = sockets_per_user
        self._epochs = epochs
        self.presence_loop = PresenceLoop(messages, presence, lambda: len(self.states))
        self._cleanups: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self.states)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self.states))

    # -- a connection's life -------------------------------------------------

    async def admit(self, conn: Connection, session: SessionInfo | None) -> bool:
        """Register ``conn``; False when it closed meanwhile or its session has ended
        (then it is closed: 1008). ``TooManyConnectionsError`` over the socket cap."""
        self.states[conn] = ConnectionState(self._limiter.for_socket())
        if not self._sessions.watch(conn, session):
            conn.close(1008, SESSION_ENDED)
            return False
        cap = self._sockets_per_user
        try:
            admitted = await self.presence_loop.claim_socket(conn, cap)
        except Exception:
            self._forget(conn)
            raise
        if not admitted:
            self._forget(conn)
            raise TooManyConnectionsError(f"at most {cap} open sockets per user")
        if conn not in self.states:  # closed while we waited: uncount it
            await self.presence_loop.release_socket(conn)
            return False
        return True

    def greet(self, conn: Connection, hello: bytes) -> None:
        """Send ``hello``, then [issue 13] the frames of control events that came while
        it was prepared (``ConnectionState.tell``)."""
        conn.deliver(hello)
        state = self.states.get(conn)
        if state is not None:
            state.greet(conn)

    async def drop(self, conn: Connection) -> None:
        """Forget a closed connection, leaving its rooms."""
        state = self._forget(conn)
        if state is None:
            return
        await self.presence_loop.release_socket(conn)
        for room in list(state.rooms):
            await self.leave(conn, room)

    def _forget(self, conn: Connection) -> ConnectionState | None:
        self._sessions.unwatch(conn)
        return self.states.pop(conn, None)

    def limits(self, conn: Connection) -> SocketLimits:
        """The connection's own limits (fresh ones for a connection no longer here)."""
        state = self.states.get(conn)
        return state.limits if state is not None else self._limiter.for_socket()

    async def counting_refusals(self, conn: Connection, verb: Awaitable[T]) -> T:
        """Run a send or change of ``conn``, counting the ``retry_after``\\ s it ignores
        (too many, and the socket is closed: 1008)."""
        limits = self.limits(conn)
        if self._limiter.strike(limits):
            conn.close(1008, "rate limit ignored")
        try:
            return await verb
        except RateLimitedError as exc:
            self._limiter.refused(limits, exc.retry_after)
            raise

    # -- rooms ---------------------------------------------------------------

    async def join(
        self,
        conn: Connection,
        ref: RoomRef,
        since_id: int | None,
        rev: int | None,
        their_epoch: str | None = None,
    ) -> None:
        """Subscribe ``conn`` to ``ref`` and send it ``joined`` (``since_id``: None for
        "what this connection does not have yet"; ``rev``: the changes since, or None;
        ``their_epoch``: the epoch the client's ``since`` belongs to, SPEC §8)."""
        state = self.states.get(conn)
        if state is None:  # closed while the room was looked up
            return
        sub, new = self._hub.subscribe(ref.name, conn)
        turn = self._hub.epoch_turn(ref.name)
        local = self.presence_loop.local
        if new:
            local.add(ref.name, conn.account.name)
        else:
            state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), sub.last_id)
        asked_since = since_id is not None
        if since_id is None:
            since_id = state.has_up_to.get(ref.name)
        state.rooms[ref.name] = ref
        try:
            with storage_guard():
                # [issue 16] A room's first join here waits for its shard channel's
                # subscription: what is published after the history read then arrives.
                await self._hub.ready(ref.name)
                await local.settle(ref.name, conn.account.name)
                page = await self._history(ref, since_id, rev)
                reset = asked_since and their_epoch is not None and their_epoch != page.epoch
                if reset or self._hub.epoch_moved(ref.name, page.epoch):
                    # Another life of the room's history (SPEC §8): all of it, afresh.
                    turn = self._hub.epoch_turn(ref.name)
                    reset, page = True, await self._history(ref, None, None)
                online = await self._presence.online(ref.name)
                while self._hub.epoch_turn(ref.name) != turn:
                    # SPEC §8: the epoch moved here while we read the room, and the
                    # resync passed this subscription by (its joined was not out):
                    # the new epoch, afresh. Nothing is awaited from here to the joined.
                    turn = self._hub.epoch_turn(ref.name)
                    reset, page = True, await self._history(ref, None, None)
        except Exception:
            await self.leave(conn, ref.name)
            raise
        if conn not in self.states or not self._hub.holds(ref.name, sub):
            # Closed while we waited, or removed from the room [issue 13]: the
            # disconnect (or the removal) took the presence back; deliver nothing.
            return
        conn.deliver(frames.joined(page, online, updates=rev is not None, reset=reset))
        if reset:
            state.has_up_to[ref.name] = page.last_id
        else:
            state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), page.last_id)
        self._hub.joined(ref.name, sub, page.last_id, page.rev, page.epoch, reset)
        await local.announce_online(ref.name, conn.account.name)  # if this made them so

    async def _history(self, ref: RoomRef, since: int | None, since_rev: int | None) -> HistoryPage:
        """The room's history for a join; [SPEC §8] a room without an epoch (new, or
        emptied by Redis) gets one first, its ids continuing after the archive's."""
        page = await self._messages.history(ref.name, since, since_rev)
        if page.epoch is None:
            await self._epochs.ensure(ref.id, ref.name)
            page = await self._messages.history(ref.name, since, since_rev)
        self._epochs.note(ref.name, page.last_id)
        return page

    async def leave(self, conn: Connection, room: str) -> None:
        """Unsubscribe ``conn`` from ``room`` (nothing if it was not subscribed)."""
        sub = self._hub.unsubscribe(room, conn)
        if sub is None:
            return
        state = self.states.get(conn)
        if state is not None:
            state.rooms.pop(room, None)
            if sub.pending is None:
                state.has_up_to[room] = max(state.has_up_to.get(room, 0), sub.last_id)
        await self._left(conn, room)

    async def _left(self, conn: Connection, room: str) -> None:
        """``conn`` no longer holds ``room``: the user's presence there goes when it was
        their last socket here (and "offline" is announced)."""
        local = self.presence_loop.local
        local.remove(room, conn.account.name)
        with contextlib.suppress(*REDIS_DOWN):
            # A join of the user's in flight here takes the change along instead
            # (its Redis call may take a while).
            await local.settle(room, conn.account.name, wait=False)

    def left_later(self, conn: Connection, room: str) -> None:
        """[issue 13] A removal ended ``conn``'s subscription to ``room``: its presence
        entry goes (and "offline" is announced) in the background."""

        task = asyncio.ensure_future(self._left(conn, room))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
