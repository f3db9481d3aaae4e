"""ChatController: the user verbs of live chat — connect, join, leave, send, edit,
delete, react, typing, read.

The façade the WebSocket handler (and the HTTP API's send and change) talks to:
each verb validates its frame, checks the room and hands the work to its parts:
the registry of connections and the rooms each one joined (``registry.py``), the
send path with its files, replies and mentions (``posting.py``), the changes
(``message_changes.py``), the fan-out hub and its listener (``fanout.py``), the
presence loop (``presence_loop.py``), the room-access cache (``access_cache.py``),
the send limits (``limits.py``), session tracking (``session_watch.py``), the
control events (``control_events.py``) and the shutdown of verbs in flight
(``inflight.py``).
"""

from __future__ import annotations

import contextlib

from chatroom.controllers import frames, validation
from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.accounts import Account, SessionInfo
from chatroom.controllers.connection import Connection
from chatroom.controllers.control_events import ControlEvents
from chatroom.controllers.errors import BadRequestError, storage_guard
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.files import FilesController
from chatroom.controllers.inflight import InFlight, client_verb
from chatroom.controllers.limits import ConnectionCaps, SendLimiter, SendLimits
from chatroom.controllers.message_changes import ChangeResult, MessageChanges
from chatroom.controllers.posting import Posting
from chatroom.controllers.presence_loop import PresenceLoop
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.controllers.redis_outage import REDIS_DOWN
from chatroom.controllers.registry import ConnectionRegistry
from chatroom.controllers.room_rules import RoomRules
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.rooms import RoomController
from chatroom.controllers.session_watch import SessionWatch
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, PresenceRepository


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
        files: FilesController | None = None,
        changes: MessageChanges | None = None,
        rules: RoomRules | None = None,
    ) -> None:
        self._rooms = rooms
        self._messages = messages
        self._presence = presence
        self._limits = limits or SendLimits()
        self._caps = caps or ConnectionCaps()
        self.read_markers = read_markers
        self.metrics = metrics or Metrics()
        self._access = RoomAccessCache()
        self._limiter = SendLimiter(self._limits, self._caps, self.metrics)
        self._sessions = SessionWatch()
        self._hub = FanoutHub(
            messages, presence, self.metrics, self._apply_control, epochs=rooms.epochs
        )
        sockets = self._caps.sockets_per_user
        self._registry = ConnectionRegistry(
            self._hub, messages, presence, self._limiter, self._sessions, sockets, rooms.epochs
        )
        states = self._registry.states
        left, lost = self._registry.left_later, rooms.access_lost  # issue 13
        self._control = ControlEvents(
            self._access, self._sessions, states, self._hub, left, lost, self.presence_loop.local
        )
        self._hub.on_subscribed = self._catch_up_access  # issue 13
        if read_markers is not None:  # SPEC §8: marks of a lost history are not written
            self._hub.on_epoch = read_markers.drop_room
        self.listening = self._hub.listening
        self.in_flight = InFlight()
        #: Uploaded files (SPEC §9), edits, deletes, reactions, replies (SPEC §5) and the
        #: rooms' rules (bans, mutes, read-only: SPEC §6), when the composition root gives
        #: them; sends go through ``Posting``.
        self.files, self.changes, self.rules = files, changes, rules
        stopping = self.in_flight.stopping
        self._posting = Posting(
            messages, self._limits, self._limiter, self.metrics, stopping, files, changes
        )
        self._posting.rules = rules
        self._posting.epochs = rooms.epochs  # SPEC §8
        self._posting.forget_access = self._access.forget  # a ban found by a script
        if changes is not None and changes.mentions is not None:  # issue 13: blocks
            self._control.on_blocks = changes.mentions.forget_blocks

    @property
    def send_retry_seconds(self) -> float:
        """[SPEC §8] How long a send retries while Redis does not answer (a failover)."""
        return self._posting.retry_seconds

    @send_retry_seconds.setter
    def send_retry_seconds(self, seconds: float) -> None:
        self._posting.retry_seconds = seconds

    @property
    def presence_loop(self) -> PresenceLoop:
        """This process's presence upkeep (tests drive its ``tick`` themselves)."""
        return self._registry.presence_loop

    @property
    def connection_count(self) -> int:
        return len(self._registry)

    # -- connections -------------------------------------------------------

    async def connect(self, conn: Connection, session: SessionInfo | None = None) -> None:
        """Register a connection and send it ``hello``.

        With ``session`` (what the socket authenticated with) the connection is
        closed (1008) when that session ends or expires. ``TooManyConnectionsError``
        when the user already holds the most sockets allowed (counted in Redis,
        across every process).
        """
        if not await self._registry.admit(conn, session):
            return
        self._control.admitted(conn, session)  # [issue 13] a role changed since the session
        with storage_guard():
            rooms = await self._rooms.memberships(conn.account)
        self._registry.greet(conn, frames.hello(conn.account.name, rooms))

    async def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection and announce presence changes."""
        await self._registry.drop(conn)

    def close_all(self, code: int, reason: str) -> None:
        for conn in self._registry:
            conn.close(code, reason)

    def abort_all(self) -> None:
        """Drop every connection still open, without waiting for its close handshake."""
        for conn in self._registry:
            conn.abort()

    async def finish_in_flight(self, timeout: float) -> None:
        """Shutdown: let client frames in flight finish, or answer them ``unavailable``
        (see ``InFlight.finish``)."""
        await self.in_flight.finish(timeout)

    # -- client frames -----------------------------------------------------

    @client_verb
    async def join(
        self,
        conn: Connection,
        room: object,
        since: object = None,
        since_rev: object = None,
        epoch: object = None,
    ) -> None:
        """Subscribe the connection to a room and send ``joined`` with the history.

        The room's full history goes to a connection once: a later ``join`` of
        the same room without ``since`` is answered as if ``since`` were the
        newest id this connection already has of it. [SPEC §8] A ``since`` with an
        ``epoch`` that is not the room's gets ``reset: true`` and the whole window.
        """
        since_id = None if since is None else validation.message_id(since, "since")
        # [issue 12] catch-up of edits, deletes and reactions (SPEC §5)
        rev = None if since_rev is None else validation.message_id(since_rev, "since_rev")
        their_epoch = validation.epoch(epoch)
        validation.room_name(room)
        state = self._registry.states.get(conn)
        if state is not None:
            self._limiter.take_join(state.limits)
        ref = await self._room_for(conn.account, room)
        await self._registry.join(conn, ref, since_id, rev, their_epoch)

    @client_verb
    async def leave(self, conn: Connection, room: object) -> None:
        await self._registry.leave(conn, validation.room_name(room))

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
        sent = self.post(conn.account, room, text, client_id, files, reply_to)
        message_id = await self._registry.counting_refusals(conn, sent)
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
        Replies, mentions, files and the round trip are ``Posting``'s (posting.py).
        """
        body, cid = self._posting.check(text, client_id, files)
        ref = await self._room_for(account, room)
        message_id = await self._posting.post(account, ref, body, cid, files, reply_to)
        if self.read_markers is not None:
            self.read_markers.mark(account.id, ref.id, message_id, ref.name)
        return message_id

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
        changed = self.change(conn.account, room, verb, *args)
        result = await self._registry.counting_refusals(conn, changed)
        if cid is not None:
            conn.deliver(frames.ack(cid, result.id, room))  # room validated by change

    async def change(
        self, account: Account, room: object, verb: str, *args: object
    ) -> ChangeResult:
        """Edit, delete or react (``verb``) for ``account``; shares the send limits."""
        if self.changes is None:
            raise BadRequestError("this server does not change messages")
        ref = await self._room_for(account, room)
        return await self._posting.change(account, ref, verb, *args)

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
        await self._registry.presence_loop.run(self._housekeeping)

    async def retire_presence(self) -> None:
        """Shutdown: take what this process still holds out of presence at once."""
        await self._registry.presence_loop.retire()

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
        """The room, checked and joined once per process; then served from memory.

        A check that an invalidation overtook (a kick or ban arrived while it ran) is
        made again, so a removed user is not let back in by a check made before.
        """
        name = validation.room_name(room)
        for _ in range(3):
            ref = self._access.get(account.id, name)
            if ref is not None:
                return ref
            ticket = self._access.ticket()
            ref = await self._rooms.join(account, name)
            if self._access.put(account.id, name, ref, ticket):
                return ref
        return ref  # invalidations keep coming: the newest check answers

    async def _catch_up_access(self) -> None:
        """[issue 13] The subscription is (re)established: access changes published
        while it was down were missed (see ``ControlEvents.catch_up``)."""
        with contextlib.suppress(*REDIS_DOWN):
            await self._control.catch_up(await self._messages.events.access_version())

    def _apply_control(self, control: dict) -> None:
        """A control event from the bus (operator commands, other processes)."""
        self._control.apply(control)
