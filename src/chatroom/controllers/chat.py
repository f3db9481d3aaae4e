"""ChatController: the user verbs of live chat — connect, join, leave, send, typing, read.

The façade the WebSocket handler talks to. It keeps the process's registry of
connections and the rooms each one joined, and hands the rest to its parts: the
fan-out hub and its listener (``fanout.py``), the presence loop
(``presence_loop.py``), the room-access cache (``access_cache.py``), the send
limits (``limits.py``), session tracking (``session_watch.py``), the control
events (``control_events.py``), the shutdown of verbs in flight (``inflight.py``)
and the retries through a Redis outage (``redis_outage.py``).
"""

from __future__ import annotations

import contextlib

from chatroom.controllers import frames, validation
from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.accounts import Account, SessionInfo
from chatroom.controllers.connection import Connection, ConnectionState
from chatroom.controllers.control_events import ControlEvents
from chatroom.controllers.errors import (
    BadRequestError,
    RateLimitedError,
    TooManyConnectionsError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.files import FilesController
from chatroom.controllers.inflight import InFlight, client_verb
from chatroom.controllers.limits import ConnectionCaps, SendLimiter, SendLimits
from chatroom.controllers.message_changes import ChangeResult, MessageChanges
from chatroom.controllers.presence_loop import PresenceLoop
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.controllers.redis_outage import REDIS_DOWN, append_retrying
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.rooms import RoomController
from chatroom.controllers.session_watch import SESSION_ENDED, SessionWatch
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, PresenceRepository
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.messages import FsyncTimeout


class ChatController:
    """The live chat of this process; every process runs one, Redis joins them."""

    def __init__(
        self,
        rooms: RoomController,
        messages: MessageRepository,
        presence: PresenceRepository,
        limits: SendLimits | None = None,
        read_markers: ReadMarkerBuffer | None = None,
        metrics: Metrics | None = None,
        caps: ConnectionCaps | None = None,
    ) -> None:
        self._rooms = rooms
        self._messages = messages
        self._presence = presence
        self._limits = limits or SendLimits()
        self._caps = caps or ConnectionCaps()
        self.read_markers = read_markers
        self.metrics = metrics or Metrics()
        self._connections: dict[Connection, ConnectionState] = {}
        self._access = RoomAccessCache()
        self._limiter = SendLimiter(self._limits, self._caps, self.metrics)
        self._sessions = SessionWatch()
        self._hub = FanoutHub(messages, presence, self.metrics, self._apply_control)
        self._presence_loop = PresenceLoop(messages, presence, lambda: self.connection_count)
        self._control = ControlEvents(
            self._access, self._sessions, self._connections, self._hub, self._presence_loop.local
        )
        self.listening = self._hub.listening
        self.in_flight = InFlight()
        #: Set by the composition root: what checks and attaches uploaded files (SPEC §9).
        self.files: FilesController | None = None
        #: [issue 12] Set by the composition root: edits, deletes, reactions, replies.
        self.changes: MessageChanges | None = None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def presence_loop(self) -> PresenceLoop:
        """This process's presence upkeep (tests drive its ``tick`` themselves)."""
        return self._presence_loop

    # -- connections -------------------------------------------------------

    async def connect(self, conn: Connection, session: SessionInfo | None = None) -> None:
        """Register a connection and send it ``hello``.

        With ``session`` (what the socket authenticated with) the connection is
        closed (1008) when that session ends or expires. ``TooManyConnectionsError``
        when the user already holds the most sockets allowed (counted in Redis,
        across every process).
        """
        self._connections[conn] = ConnectionState(self._limiter.for_socket())
        if not self._sessions.watch(conn, session):
            conn.close(1008, SESSION_ENDED)
            return
        cap = self._caps.sockets_per_user
        try:
            admitted = await self._presence_loop.claim_socket(conn, cap)
        except Exception:
            self._forget(conn)
            raise
        if not admitted:
            self._forget(conn)
            raise TooManyConnectionsError(f"at most {cap} open sockets per user")
        if conn not in self._connections:  # closed while we waited: uncount it
            await self._presence_loop.release_socket(conn)
            return
        with storage_guard():
            rooms = await self._rooms.memberships(conn.account)
        conn.deliver(frames.hello(conn.account.name, rooms))

    async def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection and announce presence changes."""
        state = self._forget(conn)
        if state is None:
            return
        await self._presence_loop.release_socket(conn)
        for room in list(state.rooms):
            await self._unsubscribe(conn, room)

    def _forget(self, conn: Connection) -> ConnectionState | None:
        self._sessions.unwatch(conn)
        return self._connections.pop(conn, None)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self._connections):
            conn.close(code, reason)

    def abort_all(self) -> None:
        """Drop every connection still open, without waiting for its close handshake."""
        for conn in list(self._connections):
            conn.abort()

    async def finish_in_flight(self, timeout: float) -> None:
        """Shutdown: let client frames in flight finish, or answer them ``unavailable``
        (see ``InFlight.finish``)."""
        await self.in_flight.finish(timeout)

    # -- client frames -----------------------------------------------------

    @client_verb
    async def join(
        self, conn: Connection, room: object, since: object = None, since_rev: object = None
    ) -> None:
        """Subscribe the connection to a room and send ``joined`` with the history.

        The room's full history goes to a connection once: a later ``join`` of
        the same room without ``since`` is answered as if ``since`` were the
        newest id this connection already has of it.
        """
        since_id = None if since is None else validation.message_id(since, "since")
        # [issue 12] catch-up of edits, deletes and reactions (SPEC §5)
        rev = None if since_rev is None else validation.message_id(since_rev, "since_rev")
        validation.room_name(room)
        state = self._connections.get(conn)
        if state is not None:
            self._limiter.take_join(state.limits)
        ref = await self._room_for(conn.account, room)
        state = self._connections.get(conn)
        if state is None:  # closed while the room was looked up
            return
        sub, new = self._hub.subscribe(ref.name, conn)
        local = self._presence_loop.local
        if new:
            local.add(ref.name, conn.account.name)
        else:
            state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), sub.last_id)
        if since_id is None:
            since_id = state.has_up_to.get(ref.name)
        state.rooms[ref.name] = ref
        try:
            with storage_guard():
                await local.settle(ref.name, conn.account.name)
                page = await self._messages.history(ref.name, since_id, rev)
                online = await self._presence.online(ref.name)
        except Exception:
            await self._unsubscribe(conn, ref.name)
            raise
        if conn not in self._connections:
            return  # closed while we waited: its disconnect took the presence back
        conn.deliver(frames.joined(page, online, updates=rev is not None))
        state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), page.last_id)
        self._hub.joined(ref.name, sub, page.last_id, page.rev)  # [issue 12] rev
        await local.announce_online(ref.name, conn.account.name)  # if this made them so

    @client_verb
    async def leave(self, conn: Connection, room: object) -> None:
        name = validation.room_name(room)
        await self._unsubscribe(conn, name)

    @client_verb
    async def send(
        self,
        conn: Connection,
        room: object,
        text: object,
        client_id: object = None,
        files: object = None,
        reply_to: object = None,
    ) -> None:
        """Store a message (one Redis round trip) and ``ack`` it to the sender."""
        state = self._connections.get(conn)
        limits = state.limits if state is not None else self._limiter.for_socket()
        if self._limiter.strike(limits):
            conn.close(1008, "rate limit ignored")
        try:
            message_id = await self.post(conn.account, room, text, client_id, files, reply_to)
        except RateLimitedError as exc:
            self._limiter.refused(limits, exc.retry_after)
            raise
        conn.deliver(frames.ack(client_id, message_id, room))  # both validated by post

    async def post(
        self,
        account: Account,
        room: object,
        text: object,
        client_id: object = None,
        files: object = None,
        reply_to: object = None,
    ) -> int:
        """Store a message for ``account`` and publish it; the message id.

        The whole per-message path: validation, an in-memory room check, this
        process's token bucket for the user, one Redis round trip (which also
        checks the user's bucket for the room, shared by every process). No SQL,
        except for a message with ``files`` (SPEC §9): those are checked and
        reserved in SQL before the round trip and attached to the message after.
        """
        if files is not None and text in (None, ""):
            body = ""  # a message of files alone
        else:
            body = validation.message_text(text, self._limits.max_chars)
        if files is not None and self.files is None:
            raise BadRequestError("this server does not take files")
        cid = validation.client_id(client_id)
        ref = await self._room_for(account, room)
        fields = await self._reply_and_mentions(account, ref, body, reply_to)  # issue 12
        self._limiter.take_send(account.key)
        claim, objects = None, None
        if files is not None and self.files is not None:
            _, objects, claim = await self.files.claim(account, ref, files, cid)
        limits = self._limits
        rate = SendRate(limits.burst, limits.per_second)
        try:
            try:
                stored = await append_retrying(
                    self._messages,
                    self.in_flight.stopping,
                    ref.name,
                    account.name,
                    body,
                    cid,
                    rate,
                    objects,
                    **fields,
                )
            except Exception:
                if claim is not None and self.files is not None:  # free the files
                    await self.files.unclaim(claim)
                raise
        except SendRateExceeded as exc:
            self._limiter.refund_send(account.key)  # nothing was sent
            self.metrics.rate_limited.inc()
            raise RateLimitedError(
                "too many messages; wait before sending again", exc.retry_after
            ) from None
        except FsyncTimeout as exc:
            raise UnavailableError("the message is not yet safely stored; retry") from exc
        if claim is not None and self.files is not None:  # the files are the message's now
            await self.files.attach(claim, stored.id)
        if stored.created:
            self.metrics.messages_stored.inc()
        if self.read_markers is not None:
            self.read_markers.mark(account.id, ref.id, stored.id)
        return stored.id

    async def _reply_and_mentions(
        self, account: Account, ref: RoomRef, body: str, reply_to: object
    ) -> dict:
        """[issue 12] The ``reply_to`` and mentions of a new message (SPEC §5)."""
        changes = self.changes
        if changes is None:
            if reply_to is not None:
                raise BadRequestError("this server does not take replies")
            return {}
        fields: dict = {}
        quote = await changes.reply_to(ref, reply_to)
        if quote is not None:
            fields["reply_to"] = quote
        if changes.mentions is not None and body:
            mentioned = await changes.mentions.mentioned(ref, body)
            if mentioned:
                fields["mentions"] = mentioned
                fields["mention_keys"] = changes.mention_keys(ref.name, mentioned, account)
        return fields

    # -- [issue 12] edit, delete, react (SPEC §5): thin delegations ----------

    @client_verb
    async def edit(
        self, conn: Connection, room: object, message_id: object, text: object, client_id=None
    ) -> None:
        await self._change_verb(conn, room, client_id, "edit", message_id, text)

    @client_verb
    async def delete(
        self, conn: Connection, room: object, message_id: object, client_id: object = None
    ) -> None:
        await self._change_verb(conn, room, client_id, "delete", message_id)

    @client_verb
    async def react(
        self,
        conn: Connection,
        room: object,
        message_id: object,
        emoji: object,
        on: object,
        client_id: object = None,
    ) -> None:
        await self._change_verb(conn, room, client_id, "react", message_id, emoji, on)

    async def _change_verb(
        self, conn: Connection, room: object, client_id: object, verb: str, *args: object
    ) -> None:
        cid = validation.client_id(client_id)
        state = self._connections.get(conn)
        limits = state.limits if state is not None else self._limiter.for_socket()
        if self._limiter.strike(limits):
            conn.close(1008, "rate limit ignored")
        try:
            result = await self.change(conn.account, room, verb, *args)
        except RateLimitedError as exc:
            self._limiter.refused(limits, exc.retry_after)
            raise
        if cid is not None:
            conn.deliver(frames.ack(cid, result.id, room))  # room validated by change

    async def change(
        self, account: Account, room: object, verb: str, *args: object
    ) -> ChangeResult:
        """Edit, delete or react (``verb``) for ``account``; shares the send limits."""
        if self.changes is None:
            raise BadRequestError("this server does not change messages")
        ref = await self._room_for(account, room)
        self._limiter.take_send(account.key)
        try:
            return await getattr(self.changes, verb)(account, ref, *args)
        except RateLimitedError:
            self._limiter.refund_send(account.key)  # nothing was changed
            self.metrics.rate_limited.inc()
            raise

    @client_verb
    async def typing(self, conn: Connection, room: object) -> None:
        """Relay "typing" to the room's other users, at most once per interval."""
        ref = await self._room_for(conn.account, room)
        if not self._limiter.typing_due(conn.account.key, ref.name):
            return
        with storage_guard():
            frame = frames.typing(ref.name, conn.account.name)
            await self._messages.events.publish(ref.name, frame, exclude_user=conn.account.key)

    @client_verb
    async def read(self, conn: Connection, room: object, message_id: object) -> None:
        """Move the user's read marker in a room forward."""
        up_to = validation.message_id(message_id)
        ref = await self._room_for(conn.account, room)
        with storage_guard():
            await self._rooms.mark_read(conn.account, ref, up_to)

    # -- background tasks (server.py starts them) ---------------------------

    async def run_listener(self) -> None:
        """Hold this process's one Redis subscription (see ``FanoutHub.run_listener``)."""
        await self._hub.run_listener()

    async def run_presence(self) -> None:
        """Keep this process's presence fresh (see ``PresenceLoop``), forever."""
        await self._presence_loop.run(self._housekeeping)

    async def retire_presence(self) -> None:
        """Shutdown: take what this process still holds out of presence at once."""
        await self._presence_loop.retire()

    async def _housekeeping(self) -> None:
        """What runs on each presence tick after Redis: flushes, expiry, idle limits."""
        if self.read_markers is not None:
            await self.read_markers.flush()
        self.close_expired()
        self._limiter.forget_idle()
        self._sessions.forget_old()

    def close_expired(self) -> None:
        """Close (1008) the connections whose session's time (--session-days) is up."""
        self._sessions.close_expired()

    # -- helpers -----------------------------------------------------------

    async def _room_for(self, account: Account, room: object) -> RoomRef:
        """The room, checked and joined once per process; then served from memory."""
        name = validation.room_name(room)
        ref = self._access.get(account.id, name)
        if ref is None:
            ticket = self._access.ticket()
            ref = await self._rooms.join(account, name)
            self._access.put(account.id, name, ref, ticket)
        return ref

    async def _unsubscribe(self, conn: Connection, room: str) -> None:
        sub = self._hub.unsubscribe(room, conn)
        if sub is None:
            return
        state = self._connections.get(conn)
        if state is not None:
            state.rooms.pop(room, None)
            if sub.pending is None:
                state.has_up_to[room] = max(state.has_up_to.get(room, 0), sub.last_id)
        local = self._presence_loop.local
        local.remove(room, conn.account.name)
        with contextlib.suppress(*REDIS_DOWN):
            # Announces offline if last; a join of the user's in flight here takes
            # the change along instead (its Redis call may take a while).
            await local.settle(room, conn.account.name, wait=False)

    def _apply_control(self, control: dict) -> None:
        """A control event from the bus (operator commands, other processes)."""
        self._control.apply(control)
