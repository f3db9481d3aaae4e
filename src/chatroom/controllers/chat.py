"""ChatController: the live part of chat — connect, join, send, fan-out, typing, presence.

It keeps the process's registry of connections and the rooms each one joined,
and runs the one listener that turns Redis events into frames on local sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import redis.exceptions

from chatroom.config import Config
from chatroom.controllers import frames, validation
from chatroom.controllers.accounts import Account, RoomRef
from chatroom.controllers.connection import Connection
from chatroom.controllers.errors import (
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.ratelimit import TokenBucket
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.controllers.rooms import RoomController
from chatroom.metrics import Metrics
from chatroom.models import HistoryPage, MessageRepository, PresenceRepository
from chatroom.models.messages import (
    Event,
    FsyncTimeout,
    SendRate,
    SendRateExceeded,
    StoredMessage,
    message_frame,
)

log = logging.getLogger(__name__)

#: A typing relay per user and room at most this often.
TYPING_INTERVAL_SECONDS = 2.0
#: Presence heartbeats and the sweep for dead connections run this often.
PRESENCE_INTERVAL_SECONDS = 3.0
#: How long a send is retried when Redis fails mid-call...
AMBIGUOUS_SEND_RETRY_SECONDS = 3.0
#: ...waiting the first delay, doubled each time up to the second.
SEND_RETRY_BACKOFF = (0.05, 0.5)
#: The event listener resubscribes after the first delay, doubled up to the second.
LISTENER_RETRY_BACKOFF = (0.1, 5.0)
#: The per-process bucket of a user across rooms allows this many times the room limit.
CROSS_ROOM_FACTOR = 2
#: (user, room) access checks remembered per process; the oldest are forgotten first.
ACCESS_CACHE_SIZE = 50_000
#: Sends that ignore a ``retry_after`` before the connection is closed (1008).
MAX_IGNORED_RETRIES = 20
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


@dataclass(frozen=True)
class SendLimits:
    """How much one user may send: SPEC §3's token bucket and text length.

    The defaults are those of the settings ``max_message_chars``, ``send_burst``
    and ``send_per_second``.
    """

    max_chars: int = Config.max_message_chars
    burst: int = Config.send_burst
    per_second: float = Config.send_per_second


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
    """What the controller tracks per connection: its joined rooms and rate-limit strikes."""

    rooms: dict[str, RoomRef] = field(default_factory=dict)
    retry_at: float = 0.0
    ignored_retries: int = 0


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
    ) -> None:
        self._rooms = rooms
        self._messages = messages
        self._presence = presence
        self._limits = limits or SendLimits()
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
        self.listening = asyncio.Event()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- connections -------------------------------------------------------

    async def connect(self, conn: Connection) -> None:
        """Register a connection and send it ``hello``."""
        self._connections[conn] = ConnectionState()
        with storage_guard():
            rooms = await self._rooms.memberships(conn.account)
        conn.deliver(frames.hello(conn.account.name, rooms))

    async def disconnect(self, conn: Connection) -> None:
        """Forget a closed connection and announce presence changes."""
        state = self._connections.pop(conn, None)
        if state is None:
            return
        for room in list(state.rooms):
            await self._unsubscribe(conn, room)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self._connections):
            conn.close(code, reason)

    # -- client frames -----------------------------------------------------

    async def join(self, conn: Connection, room: object, since: object = None) -> None:
        """Subscribe the connection to a room and send ``joined`` with the history."""
        since_id = None if since is None else validation.message_id(since, "since")
        ref = await self._room_for(conn.account, room)
        state = self._connections.get(conn)
        if state is None:  # closed while the room was looked up
            return
        subs = self._subscribers.setdefault(ref.name, {})
        sub = subs.get(conn)
        if sub is None:
            sub = subs[conn] = Subscription(conn, conn.account.key)
        else:
            sub.pending = sub.pending if sub.pending is not None else []
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
        sub.release(page.last_id)
        self._room_last[ref.name] = max(self._room_last.get(ref.name, 0), page.last_id)
        if first:
            await self._announce(ref.name, conn.account.name, "online")

    async def leave(self, conn: Connection, room: object) -> None:
        name = validation.room_name(room)
        await self._unsubscribe(conn, name)

    async def send(
        self, conn: Connection, room: object, text: object, client_id: object = None
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
            message_id = await self.post(conn.account, room, text, client_id)
        except RateLimitedError as exc:
            state.retry_at = time.monotonic() + exc.retry_after
            raise
        conn.deliver(frames.ack(client_id, message_id, room))  # both validated by post

    async def post(
        self, account: Account, room: object, text: object, client_id: object = None
    ) -> int:
        """Store a message for ``account`` and publish it; the message id.

        The whole per-message path: validation, an in-memory room check, this
        process's token bucket for the user, one Redis round trip (which also
        checks the user's bucket for the room, shared by every process). No SQL.
        """
        body = validation.message_text(text, self._limits.max_chars)
        cid = validation.client_id(client_id)
        ref = await self._room_for(account, room)
        self._take_token(account)
        limits = self._limits
        rate = SendRate(limits.burst, limits.per_second)
        try:
            stored = await self._append(ref.name, account.name, body, cid, rate)
        except SendRateExceeded as exc:
            if bucket := self._buckets.get(account.key):
                bucket.refund()  # nothing was sent
            self.metrics.rate_limited.inc()
            raise RateLimitedError(
                "too many messages; wait before sending again", exc.retry_after
            ) from None
        except FsyncTimeout as exc:
            raise UnavailableError("the message is not yet safely stored; retry") from exc
        if stored.created:
            self.metrics.messages_stored.inc()
        if self.read_markers is not None:
            self.read_markers.mark(account.id, ref.id, stored.id)
        return stored.id

    async def _append(
        self, room: str, user: str, text: str, client_id: str | None, rate: SendRate
    ) -> StoredMessage:
        """One append; when Redis fails mid-call, retry it for a while.

        A connection lost after the script was sent leaves it unknown whether the
        message was stored. Every retry carries the same dedupe key (the client's
        ``client_id``, or a key made here), so a stored message is found, never
        stored twice, and ``unavailable`` means "not stored" unless Redis stays
        unreachable for longer than the retries.
        """
        retry_key = None if client_id is not None else uuid.uuid4().hex
        delay, most = SEND_RETRY_BACKOFF
        deadline = time.monotonic() + AMBIGUOUS_SEND_RETRY_SECONDS
        while True:
            try:
                with storage_guard():
                    return await self._messages.append(
                        room, user, text, client_id, rate, retry_key=retry_key
                    )
            except UnavailableError:
                if time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

    async def typing(self, conn: Connection, room: object) -> None:
        """Relay "typing" to the room's other users, at most once per interval."""
        ref = await self._room_for(conn.account, room)
        key, now = (conn.account.key, ref.name), time.monotonic()
        if now - self._typing_sent.get(key, -TYPING_INTERVAL_SECONDS) < TYPING_INTERVAL_SECONDS:
            return
        self._typing_sent[key] = now
        with storage_guard():
            frame = frames.typing(ref.name, conn.account.name)
            await self._messages.publish(ref.name, frame, exclude_user=conn.account.key)

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
        """Hold this process's one Redis subscription; reconnect with backoff forever."""
        (first, most), subscribed_before = LISTENER_RETRY_BACKOFF, False
        delay = first
        while True:
            try:
                async with self._messages.subscribe() as events:
                    if subscribed_before:
                        self.metrics.redis_reconnects.inc()
                    subscribed_before = True
                    # Whatever was published while we were not subscribed is in
                    # the history: deliver it before the live stream.
                    for room in list(self._subscribers):
                        await self._recover(room)
                    self.listening.set()
                    delay = first
                    async for event in events:
                        if event.message_id:
                            await self._check_continuity(event)
                        self.deliver(event)
            except _REDIS_DOWN as exc:
                log.warning("event subscription lost (%s); retrying in %.1fs", exc, delay)
            except Exception:
                log.exception("event listener failed; restarting in %.1fs", delay)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

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
                await self._presence.report_connections(self.connection_count)
            except _REDIS_DOWN as exc:
                log.warning("presence refresh failed: %s", exc)
            except Exception:
                log.exception("presence refresh failed")
            if self.read_markers is not None:
                await self.read_markers.flush()
            self._forget_idle_limits()

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

    def _is_subscribed(self, room: str, conn_id: str) -> bool:
        return any(c.conn_id == conn_id for c in self._subscribers.get(room, ()))

    def _forget_idle_limits(self) -> None:
        now = time.monotonic()
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        stale = now - TYPING_INTERVAL_SECONDS
        for key in [k for k, t in self._typing_sent.items() if t < stale]:
            del self._typing_sent[key]

    async def _unsubscribe(self, conn: Connection, room: str) -> None:
        subs = self._subscribers.get(room)
        if subs is None or subs.pop(conn, None) is None:
            return
        if not subs:
            del self._subscribers[room]
            self._room_last.pop(room, None)
        state = self._connections.get(conn)
        if state is not None:
            state.rooms.pop(room, None)
        with contextlib.suppress(*_REDIS_DOWN):
            if await self._presence.leave(room, conn.account.name, conn.conn_id):
                await self._announce(room, conn.account.name, "offline")

    async def _announce(self, room: str, user: str, state: str) -> None:
        with contextlib.suppress(*_REDIS_DOWN):
            await self._messages.publish(room, frames.presence(room, user, state))

    # -- control events (chatroom rooms delete, chatroom users disable) -------

    def _apply_control(self, control: dict) -> None:
        """Drop what this process caches about a deleted room or a disabled user."""
        action = control.get("action")
        if action == "room_deleted" and isinstance(control.get("room"), str):
            self._room_deleted(control["room"])
        elif action == "user_disabled" and isinstance(control.get("user_id"), int):
            self._user_disabled(control["user_id"])
        else:
            log.warning("ignored an unknown control event: %.200r", control)

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
            conn.deliver(frame)
        # Their presence entries went with the room's keys; a heartbeat racing the
        # deletion may put one back, which expires and is swept like any other.

    def _user_disabled(self, user_id: int) -> None:
        """Forget the user's access checks and close their sockets (1008)."""
        for key in [key for key in self._access if key[0] == user_id]:
            del self._access[key]
        for conn in [conn for conn in self._connections if conn.account.id == user_id]:
            conn.close(1008, "account disabled")
