"""ChatController: the live part of chat — connect, join, send, fan-out, typing, presence.

It keeps the process's registry of connections and the rooms each one joined,
and runs the one listener that turns Redis events into frames on local sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.exceptions

from chatroom.config import Config
from chatroom.controllers import frames, validation
from chatroom.controllers.accounts import Account, SessionInfo
from chatroom.controllers.connection import Connection
from chatroom.controllers.errors import (
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    TooManyConnectionsError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.files import FilesController
from chatroom.controllers.ratelimit import TokenBucket
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.rooms import RoomController
from chatroom.metrics import Metrics
from chatroom.models import HistoryPage, MessageRepository, PresenceRepository
from chatroom.models.events import Event
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.messages import FsyncTimeout, StoredMessage, message_frame

log = logging.getLogger(__name__)

#: A typing relay per user and room at most this often.
TYPING_INTERVAL_SECONDS = 2.0
#: Presence heartbeats and the sweep for dead connections run this often.
PRESENCE_INTERVAL_SECONDS = 3.0
#: How long a send is retried when Redis fails mid-call...
AMBIGUOUS_SEND_RETRY_SECONDS = 3.0
#: Retries after a Redis failure, of a send and of the event subscription alike,
#: wait this long first and double up to the cap: delivery resumes with the acks.
REDIS_RETRY_FIRST_SECONDS = 0.05
REDIS_RETRY_MAX_SECONDS = 0.5
#: The per-process bucket of a user across rooms allows this many times the room limit.
CROSS_ROOM_FACTOR = 2
#: (user, room) access checks remembered per process; the oldest are forgotten first.
ACCESS_CACHE_SIZE = 50_000
#: Sends that ignore a ``retry_after`` before the connection is closed (1008).
MAX_IGNORED_RETRIES = 20
#: How long an ended session or user is remembered, to refuse a socket whose
#: handshake looked its session up just before the end and registers just after.
ENDED_MEMORY_SECONDS = 60.0
#: Close reasons (with code 1008) of a socket whose session ended or expired.
SESSION_ENDED = "session ended"
SESSION_EXPIRED = "session expired"
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
SHUTTING_DOWN = "the server is shutting down; send again"


def _client_verb(verb: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Marks a verb that answers a client frame: while it runs its task is in flight,
    and a cancellation by ``finish_in_flight`` at shutdown becomes ``unavailable``."""

    @functools.wraps(verb)
    async def handle(self: ChatController, *args: object, **kwargs: object) -> None:
        task = asyncio.current_task()
        if task is None:
            return await verb(self, *args, **kwargs)
        self._handling.add(task)
        try:
            return await verb(self, *args, **kwargs)
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            # The client hears unavailable and may resend (a send with its client_id
            # is deduplicated if it was stored after all).
            if hasattr(task, "uncancel"):
                task.uncancel()
            raise UnavailableError(SHUTTING_DOWN) from None
        finally:
            self._handling.discard(task)

    return handle


@dataclass(frozen=True)
class SendLimits:
    """How much one user may send: SPEC §3's token bucket and text length.

    The defaults are those of the settings ``max_message_chars``, ``send_burst``
    and ``send_per_second``.
    """

    max_chars: int = Config.max_message_chars
    burst: int = Config.send_burst
    per_second: float = Config.send_per_second


@dataclass(frozen=True)
class ConnectionCaps:
    """SPEC §10's per-user and per-socket caps (each a setting)."""

    sockets_per_user: int = 20
    joins_per_minute: int = 60


@dataclass(slots=True)
class Subscription:
    """One connection's membership of one room's live stream.

    While ``pending`` is a list the ``joined`` frame is not sent yet, and events are
    held back; ``last_id`` makes delivery exactly-once and in order per connection.
    """

    conn: Connection
    user_key: str
    last_id: int = 0
    pending: list[Event] | None = field(default_factory=list)

    def offer(self, event: Event) -> None:
        if self.pending is not None:
            self.pending.append(event)
            return
        if event.message_id:
            if event.message_id <= self.last_id:
                return
            self.last_id = event.message_id
        self.conn.deliver(event.frame)

    def release(self, last_id: int) -> None:
        """The ``joined`` frame (history up to ``last_id``) is out: deliver what waited."""
        held, self.pending = self.pending or [], None
        self.last_id = max(self.last_id, last_id)
        for event in held:
            self.offer(event)


@dataclass(slots=True)
class ConnectionState:
    """What the controller tracks per connection: its joined rooms, rate-limit strikes,
    its ``join`` bucket, the newest message id it has of each room it ever joined
    (a room's full history goes to a socket once; later joins get what is new), and
    the session it was opened with (its token hash and when it ends, epoch seconds).
    """

    joins: TokenBucket = field(default_factory=lambda: TokenBucket(60, 1.0))
    rooms: dict[str, RoomRef] = field(default_factory=dict)
    retry_at: float = 0.0
    ignored_retries: int = 0
    has_up_to: dict[str, int] = field(default_factory=dict)
    counted: bool = False  # admitted under the socket cap (its entry is kept fresh)
    session_hash: str = ""
    expires: float = math.inf


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
        self._events = messages.events  # the bus the send script publishes on
        self._presence = presence
        self._limits = limits or SendLimits()
        self._caps = caps or ConnectionCaps()
        self.read_markers = read_markers
        self.metrics = metrics or Metrics()
        self._out_messages = self.metrics.frames_out.labels("message")
        self._out_events = self.metrics.frames_out.labels("event")
        self._connections: dict[Connection, ConnectionState] = {}
        self._subscribers: dict[str, dict[Connection, Subscription]] = {}
        # The newest message id this process has seen per subscribed room: a jump
        # means the subscription missed something, recovered from the history.
        self._room_last: dict[str, int] = {}
        self._access: OrderedDict[tuple[int, str], RoomRef] = OrderedDict()
        self._buckets: dict[str, TokenBucket] = {}
        self._typing_sent: dict[tuple[str, str], float] = {}
        # ("session", token hash) or ("user", id) -> time.monotonic() it ended here.
        self._ended: dict[tuple[str, object], float] = {}
        self.listening = asyncio.Event()
        # Shutdown: set first, so sends waiting to retry are answered at once.
        self._stopping = asyncio.Event()
        self._handling: set[asyncio.Task] = set()
        #: issue 15: set by the composition root when files are on (FilesController).
        self.files: FilesController | None = None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- connections -------------------------------------------------------

    async def connect(self, conn: Connection, session: SessionInfo | None = None) -> None:
        """Register a connection and send it ``hello``.

        With ``session`` (what the socket authenticated with) the connection is
        closed (1008) when that session ends or expires. ``TooManyConnectionsError``
        when the user already holds the most sockets allowed (counted in Redis,
        across every process).
        """
        per_minute = self._caps.joins_per_minute
        state = self._connections[conn] = ConnectionState(
            joins=TokenBucket(per_minute, per_minute / 60)
        )
        if session is not None:
            state.session_hash, state.expires = session.token_hash, session.expires
            if self._ended_since(session):
                conn.close(1008, SESSION_ENDED)
                return
        user_id = conn.account.id
        try:
            with storage_guard():
                admitted = await self._presence.claim_socket(
                    user_id, conn.conn_id, self._caps.sockets_per_user
                )
        except Exception:
            self._connections.pop(conn, None)
            raise
        if not admitted:
            self._connections.pop(conn, None)
            raise TooManyConnectionsError(
                f"at most {self._caps.sockets_per_user} open sockets per user"
            )
        if conn not in self._connections:  # closed while we waited: uncount it
            with contextlib.suppress(*_REDIS_DOWN):
                await self._presence.release_socket(user_id, conn.conn_id)
            return
        state.counted = True
        with storage_guard():
            rooms = await self._rooms.memberships(conn.account)
        conn.deliver(frames.hello(conn.account.name, rooms))

    async def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection and announce presence changes."""
        state = self._connections.pop(conn, None)
        if state is None:
            return
        with contextlib.suppress(*_REDIS_DOWN):
            await self._presence.release_socket(conn.account.id, conn.conn_id)
        for room in list(state.rooms):
            await self._unsubscribe(conn, room)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self._connections):
            conn.close(code, reason)

    def abort_all(self) -> None:
        """Drop every connection still open, without waiting for its close handshake."""
        for conn in list(self._connections):
            conn.abort()

    async def finish_in_flight(self, timeout: float) -> None:
        """Shutdown: let client frames in flight finish, or answer them ``unavailable``.

        A send waiting to retry after a Redis failure gives up at once; a verb
        still inside a Redis call after ``timeout`` is cancelled, which
        ``_client_verb`` turns into ``unavailable`` too. Either way its socket is
        still open to hear the answer.
        """
        self._stopping.set()
        for _ in range(2):
            if self._handling:
                await asyncio.wait(set(self._handling), timeout=timeout)
            for task in set(self._handling):
                task.cancel()

    # -- client frames -----------------------------------------------------

    @_client_verb
    async def join(self, conn: Connection, room: object, since: object = None) -> None:
        """Subscribe the connection to a room and send ``joined`` with the history.

        The room's full history goes to a connection once: a later ``join`` of
        the same room without ``since`` is answered as if ``since`` were the
        newest id this connection already has of it.
        """
        since_id = None if since is None else validation.message_id(since, "since")
        validation.room_name(room)
        state = self._connections.get(conn)
        if state is not None:
            wait = state.joins.take()
            if wait:
                raise RateLimitedError(
                    "too many joins; wait before joining again", math.ceil(wait * 1000) / 1000
                )
        ref = await self._room_for(conn.account, room)
        state = self._connections.get(conn)
        if state is None:  # closed while the room was looked up
            return
        subs = self._subscribers.setdefault(ref.name, {})
        sub = subs.get(conn)
        if sub is None:
            sub = subs[conn] = Subscription(conn, conn.account.key)
        else:
            state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), sub.last_id)
            sub.pending = sub.pending if sub.pending is not None else []
        if since_id is None:
            since_id = state.has_up_to.get(ref.name)
        state.rooms[ref.name] = ref
        try:
            with storage_guard():
                first = await self._presence.enter(ref.name, conn.account.name, conn.conn_id)
                page = await self._messages.history(ref.name, since_id)
                online = await self._presence.online(ref.name)
        except Exception:
            await self._unsubscribe(conn, ref.name)
            raise
        if conn not in self._connections:
            # Closed while we waited: its disconnect may have run before our entry
            # landed, so remove it again, and announce nothing.
            with contextlib.suppress(*_REDIS_DOWN):
                await self._presence.leave(ref.name, conn.account.name, conn.conn_id)
            return
        conn.deliver(frames.joined(page, online))
        state.has_up_to[ref.name] = max(state.has_up_to.get(ref.name, 0), page.last_id)
        sub.release(page.last_id)
        self._room_last[ref.name] = max(self._room_last.get(ref.name, 0), page.last_id)
        if first:
            await self._announce(ref.name, conn.account.name, "online")

    @_client_verb
    async def leave(self, conn: Connection, room: object) -> None:
        name = validation.room_name(room)
        await self._unsubscribe(conn, name)

    @_client_verb
    async def send(
        self,
        conn: Connection,
        room: object,
        text: object,
        client_id: object = None,
        files: object = None,
    ) -> None:
        """Store a message (one Redis round trip) and ``ack`` it to the sender."""
        state = self._connections.get(conn) or ConnectionState()
        if time.monotonic() < state.retry_at:
            state.ignored_retries += 1
            if state.ignored_retries >= MAX_IGNORED_RETRIES:
                conn.close(1008, "rate limit ignored")
        else:
            state.ignored_retries = 0
        try:
            message_id = await self.post(conn.account, room, text, client_id, files)
        except RateLimitedError as exc:
            state.retry_at = time.monotonic() + exc.retry_after
            raise
        conn.deliver(frames.ack(client_id, message_id, room))  # both validated by post

    async def post(
        self,
        account: Account,
        room: object,
        text: object,
        client_id: object = None,
        files: object = None,
    ) -> int:
        """Store a message for ``account`` and publish it; the message id.

        The whole per-message path: validation, an in-memory room check, this
        process's token bucket for the user, one Redis round trip (which also
        checks the user's bucket for the room, shared by every process). No SQL,
        except for a message with ``files`` (issue 15): those are checked and
        reserved in SQL before the round trip and attached to the message after.
        """
        # -- issue 15: with files the text may be empty --
        if files is not None and text in (None, ""):
            body = ""
        else:
            body = validation.message_text(text, self._limits.max_chars)
        if files is not None and self.files is None:
            raise BadRequestError("this server does not take files")
        cid = validation.client_id(client_id)
        ref = await self._room_for(account, room)
        self._take_token(account)
        claim, objects = None, None
        if files is not None and self.files is not None:
            _, objects, claim = await self.files.claim(account, ref, files, cid)
        # -- end issue 15 --
        limits = self._limits
        rate = SendRate(limits.burst, limits.per_second)
        try:
            try:
                stored = await self._append(ref.name, account.name, body, cid, rate, objects)
            except Exception:
                if claim is not None and self.files is not None:  # issue 15: free the files
                    await self.files.unclaim(claim)
                raise
        except SendRateExceeded as exc:
            if bucket := self._buckets.get(account.key):
                bucket.refund()  # nothing was sent
            self.metrics.rate_limited.inc()
            raise RateLimitedError(
                "too many messages; wait before sending again", exc.retry_after
            ) from None
        except FsyncTimeout as exc:
            raise UnavailableError("the message is not yet safely stored; retry") from exc
        if claim is not None and self.files is not None:  # issue 15: the files are the message's
            await self.files.attach(claim, stored.id)
        if stored.created:
            self.metrics.messages_stored.inc()
        if self.read_markers is not None:
            self.read_markers.mark(account.id, ref.id, stored.id)
        return stored.id

    async def _append(
        self,
        room: str,
        user: str,
        text: str,
        client_id: str | None,
        rate: SendRate,
        files: list[dict] | None = None,
    ) -> StoredMessage:
        """One append; when Redis fails mid-call, retry it for a while.

        A connection lost after the script was sent leaves it unknown whether the
        message was stored. Every retry carries the same dedupe key (the client's
        ``client_id``, or a key made here), so a stored message is found, never
        stored twice, and ``unavailable`` means "not stored" unless Redis stays
        unreachable for longer than the retries.
        """
        retry_key = None if client_id is not None else uuid.uuid4().hex
        delay = REDIS_RETRY_FIRST_SECONDS
        deadline = time.monotonic() + AMBIGUOUS_SEND_RETRY_SECONDS
        while True:
            try:
                with storage_guard():
                    return await self._messages.append(
                        room, user, text, client_id, rate, retry_key=retry_key, files=files
                    )
            except UnavailableError:
                if time.monotonic() + delay > deadline or self._stopping.is_set():
                    raise
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                raise UnavailableError(SHUTTING_DOWN)
            delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)

    @_client_verb
    async def typing(self, conn: Connection, room: object) -> None:
        """Relay "typing" to the room's other users, at most once per interval."""
        ref = await self._room_for(conn.account, room)
        key, now = (conn.account.key, ref.name), time.monotonic()
        if now - self._typing_sent.get(key, -TYPING_INTERVAL_SECONDS) < TYPING_INTERVAL_SECONDS:
            return
        self._typing_sent[key] = now
        with storage_guard():
            frame = frames.typing(ref.name, conn.account.name)
            await self._events.publish(ref.name, frame, exclude_user=conn.account.key)

    @_client_verb
    async def read(self, conn: Connection, room: object, message_id: object) -> None:
        """Move the user's read marker in a room forward."""
        up_to = validation.message_id(message_id)
        ref = await self._room_for(conn.account, room)
        with storage_guard():
            await self._rooms.mark_read(conn.account, ref, up_to)

    # -- fan-out -----------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Hand one published event to every local connection in its room."""
        control = event.control()
        if control is not None:  # from the operator CLI: applied here, never sent
            self._apply_control(control)
            return
        subs = self._subscribers.get(event.room)
        if not subs:
            return
        excluded = event.exclude_user
        for sub in tuple(subs.values()):
            if excluded and sub.user_key == excluded:
                continue
            sub.offer(event)
        (self._out_messages if event.message_id else self._out_events).inc(len(subs))

    async def run_listener(self) -> None:
        """Hold this process's one Redis subscription; reconnect with backoff forever.

        The backoff is the sends' own (``REDIS_RETRY_*``): when Redis is back, live
        delivery resumes as soon as acknowledgements do.
        """
        delay, subscribed_before, lost_at = REDIS_RETRY_FIRST_SECONDS, False, None
        while True:
            try:
                async with self._events.subscribe() as events:
                    if subscribed_before:
                        self.metrics.redis_reconnects.inc()
                    if lost_at is not None:
                        lost_for, lost_at = time.monotonic() - lost_at, None
                        log.info("event subscription restored after %.1fs", lost_for)
                    subscribed_before = True
                    # Whatever was published while we were not subscribed is in
                    # the history: deliver it before the live stream.
                    for room in list(self._subscribers):
                        await self._recover(room)
                    self.listening.set()
                    delay = REDIS_RETRY_FIRST_SECONDS
                    async for event in events:
                        if event.message_id:
                            await self._check_continuity(event)
                        self.deliver(event)
            except _REDIS_DOWN as exc:
                if lost_at is None:
                    log.warning("event subscription lost (%s); reconnecting", exc)
                log.debug("event subscription: retrying in %.2fs", delay)
            except Exception:
                log.exception("event listener failed; restarting in %.2fs", delay)
            lost_at = lost_at or time.monotonic()
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)

    async def _check_continuity(self, event: Event) -> None:
        last = self._room_last.get(event.room)
        if last is None:
            return  # no local subscriber
        if event.message_id > last + 1:
            # The subscription dropped messages (a silent reconnect inside redis-py):
            # fetch them from the history before this one is delivered.
            # Later events the recovery already delivered are dropped by ``offer``.
            await self._recover(event.room)
        self._room_last[event.room] = max(self._room_last.get(event.room, 0), event.message_id)

    async def _recover(self, room: str) -> None:
        """Deliver what local subscribers of ``room`` missed, or tell them the gap."""
        ready = [s for s in self._subscribers.get(room, {}).values() if s.pending is None]
        if not ready:
            return
        page = await self._messages.history(room, min(s.last_id for s in ready))
        online: list[str] | None = None
        for sub in ready:
            items, missing = page.after(sub.last_id)
            if missing:
                # Trimmed before we could relay them: resync this socket like a
                # join with ``since``, so the client sees the exact gap.
                if online is None:
                    online = await self._presence.online(room)
                partial = HistoryPage(room, items, sub.last_id + missing + len(items), missing)
                sub.conn.deliver(frames.joined(partial, online))
                sub.last_id = partial.last_id
                continue
            for item in items:
                sub.offer(Event(room, sub.last_id + 1, "", message_frame(item)))
        self._room_last[room] = max(self._room_last.get(room, 0), page.last_id)

    async def run_presence(self) -> None:
        """Refresh this process's presence entries and sweep out dead ones, forever."""
        while True:
            await asyncio.sleep(PRESENCE_INTERVAL_SECONDS)
            try:
                entries = [
                    (room, sub.conn.account.name, sub.conn.conn_id)
                    for room, subs in self._subscribers.items()
                    for sub in subs.values()
                ]
                for room, user, conn_id in await self._presence.refresh(entries):
                    if self._is_subscribed(room, conn_id) and await self._presence.restore(
                        room, user, conn_id
                    ):
                        await self._announce(room, user, "online")
                for room, user in await self._presence.sweep():
                    await self._announce(room, user, "offline")
                await self._refresh_sockets()
                await self._presence.report_connections(self.connection_count)
            except _REDIS_DOWN as exc:
                log.warning("presence refresh failed: %s", exc)
            except Exception:
                log.exception("presence refresh failed")
            if self.read_markers is not None:
                await self.read_markers.flush()
            self.close_expired()
            self._forget_idle_limits()

    def close_expired(self) -> None:
        """Close (1008) the connections whose session's time (--session-days) is up."""
        now = time.time()
        for conn, state in list(self._connections.items()):
            if state.expires <= now:
                state.expires = math.inf  # closed once
                conn.close(1008, SESSION_EXPIRED)

    # -- helpers -----------------------------------------------------------

    async def _room_for(self, account: Account, room: object) -> RoomRef:
        """The room, checked and joined once per process; then served from memory."""
        name = validation.room_name(room)
        key = (account.id, name)
        ref = self._access.get(key)
        if ref is None:
            ref = await self._rooms.join(account, name)
            self._access[key] = ref
            if len(self._access) > ACCESS_CACHE_SIZE:
                self._access.popitem(last=False)
        else:
            self._access.move_to_end(key)
        return ref

    def _take_token(self, account: Account) -> None:
        limits, now = self._limits, time.monotonic()
        bucket = self._buckets.get(account.key)
        if bucket is None:
            # Twice the per-room limit, across all rooms: it only stops a user who
            # spreads a flood over many rooms; a client in one room that honours
            # retry_after is limited by the room bucket in Redis alone.
            bucket = TokenBucket(
                CROSS_ROOM_FACTOR * limits.burst, CROSS_ROOM_FACTOR * limits.per_second
            )
            self._buckets[account.key] = bucket
        wait = bucket.take(now)
        if wait:
            self.metrics.rate_limited.inc()
            # Whole milliseconds, rounded up: the error frame shows three decimals, and a
            # client that waits what it was shown must find a token, not a strike.
            wait = math.ceil(wait * 1000) / 1000
            raise RateLimitedError("too many messages; wait before sending again", wait)

    async def _refresh_sockets(self) -> None:
        """Keep this process's sockets counted against their users' socket caps."""
        counted = [conn for conn, state in self._connections.items() if state.counted]
        open_now = {conn.conn_id: conn for conn in counted}
        entries = [(conn.account.id, conn.conn_id) for conn in open_now.values()]
        for user_id, conn_id in await self._presence.refresh_sockets(entries):
            conn = open_now[conn_id]
            if conn in self._connections:  # not closed meanwhile
                await self._presence.restore_socket(user_id, conn_id)

    def _is_subscribed(self, room: str, conn_id: str) -> bool:
        return any(c.conn_id == conn_id for c in self._subscribers.get(room, ()))

    def _forget_idle_limits(self) -> None:
        now = time.monotonic()
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        stale = now - TYPING_INTERVAL_SECONDS
        for key in [k for k, t in self._typing_sent.items() if t < stale]:
            del self._typing_sent[key]
        forgotten = now - ENDED_MEMORY_SECONDS
        for key in [k for k, t in self._ended.items() if t < forgotten]:
            del self._ended[key]

    async def _unsubscribe(self, conn: Connection, room: str) -> None:
        subs = self._subscribers.get(room)
        sub = subs.pop(conn, None) if subs is not None else None
        if sub is None:
            return
        if not subs:
            del self._subscribers[room]
            self._room_last.pop(room, None)
        state = self._connections.get(conn)
        if state is not None:
            state.rooms.pop(room, None)
            if sub.pending is None:
                state.has_up_to[room] = max(state.has_up_to.get(room, 0), sub.last_id)
        with contextlib.suppress(*_REDIS_DOWN):
            if await self._presence.leave(room, conn.account.name, conn.conn_id):
                await self._announce(room, conn.account.name, "offline")

    async def _announce(self, room: str, user: str, state: str) -> None:
        with contextlib.suppress(*_REDIS_DOWN):
            await self._events.publish(room, frames.presence(room, user, state))

    # -- control events (chatroom rooms delete, users disable, ended sessions) --

    def _apply_control(self, control: dict) -> None:
        """Drop what this process caches about a deleted room or a disabled user, and
        close the sockets of ended sessions."""
        action = control.get("action")
        if action == "room_deleted" and isinstance(control.get("room"), str):
            self._room_deleted(control["room"])
        elif action == "user_disabled" and isinstance(control.get("user_id"), int):
            self._user_disabled(control["user_id"])
        elif action == "sessions_ended" and isinstance(control.get("session"), str):
            self._sessions_ended(("session", control["session"]))
        elif action == "sessions_ended" and isinstance(control.get("user_id"), int):
            self._sessions_ended(("user", control["user_id"]))
        else:
            log.warning("ignored an unknown control event: %.200r", control)

    def _sessions_ended(self, which: tuple[str, object], reason: str = "") -> None:
        """Close (1008) the connections of one session (by token hash) or of one user."""
        self._ended[which] = time.monotonic()
        kind, value = which
        for conn, state in list(self._connections.items()):
            if (state.session_hash if kind == "session" else conn.account.id) == value:
                conn.close(1008, reason or SESSION_ENDED)

    def _ended_since(self, session: SessionInfo) -> bool:
        """Whether the session, or all its user's sessions, ended after it was looked up."""
        if ("session", session.token_hash) in self._ended:
            return True
        return self._ended.get(("user", session.account.id), -math.inf) >= session.checked

    def _room_deleted(self, room: str) -> None:
        """Forget the room's access checks; its sockets get ``not_found`` and leave it."""
        for key in [key for key in self._access if key[1] == room]:
            del self._access[key]
        subs = self._subscribers.pop(room, {})
        self._room_last.pop(room, None)
        frame = frames.error(NotFoundError(f"the room {room!r} was deleted"), room)
        for conn in subs:
            state = self._connections.get(conn)
            if state is not None:
                state.rooms.pop(room, None)
                state.has_up_to.pop(room, None)  # a new room of that name starts afresh
            conn.deliver(frame)
        # Their presence entries went with the room's keys; a heartbeat racing the
        # deletion may put one back, which expires and is swept like any other.

    def _user_disabled(self, user_id: int) -> None:
        """Forget the user's access checks and close their sockets (1008)."""
        for key in [key for key in self._access if key[0] == user_id]:
            del self._access[key]
        self._sessions_ended(("user", user_id), "account disabled")
