"""Per-process limits of the chat: token buckets, retry_after strikes, the typing throttle.

The limits shared by every process (a user's send bucket per room, the socket
cap, the login and room-creation throttles) live in Redis (``models/``); what
is here is this process's own, in memory: a user's send bucket across rooms,
each socket's ``join`` bucket and its count of ignored ``retry_after``\\ s, and
the per user and room typing throttle.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from chatroom.config import Config
from chatroom.controllers.errors import RateLimitedError, storage_guard
from chatroom.metrics import Metrics
from chatroom.models.limits import ActionQuota

#: A typing relay per user and room at most this often.
TYPING_INTERVAL_SECONDS = 2.0
#: The per-process bucket of a user across rooms allows this many times the room limit.
CROSS_ROOM_FACTOR = 2
#: Sends that ignore a ``retry_after`` before the connection is closed (1008).
MAX_IGNORED_RETRIES = 20
#: [issue 13] How often one user may block users (``POST /api/blocks``), make invites
#: (``POST /api/invites``) and act as a room's staff (the moderation routes that change
#: something): (at once, then so many an hour), shared by every process.
BLOCKS_LIMIT = (20, 60)
INVITES_LIMIT = (20, 60)
MODERATION_LIMIT = (60, 600)
#: A token due within this long counts as there: float rounding in the refill
#: (a clock reading of 1e9 s keeps ~1e-7 s of precision) must not refuse a client
#: that waited exactly the wait it was shown.
TOKEN_DUE_SECONDS = 1e-6


def whole_milliseconds(wait: float) -> float:
    """``wait`` rounded up to whole milliseconds (what an ``error`` frame shows).

    A wait that is a whole number of milliseconds but for float noise (0.30000000000000004)
    stays that number; the nanosecond shaved off is far inside ``TOKEN_DUE_SECONDS``.
    """
    return math.ceil(wait * 1000 - 1e-6) / 1000 if wait > 0 else 0.0


@dataclass(slots=True)  # one per socket (its joins) and per user: no instance dict
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; one token per action."""

    capacity: float
    rate: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def take(self, now: float | None = None) -> float:
        """Take a token: 0.0 on success, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens + TOKEN_DUE_SECONDS * self.rate >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def retry_after(self, now: float | None = None) -> float:
        """Like ``take``, with the wait rounded up to whole milliseconds: what a client
        is told, and waiting exactly that long finds a token."""
        wait = self.take(now)
        return whole_milliseconds(wait) if wait else 0.0

    def refund(self) -> None:
        """Give back a token taken for an action that did not happen after all."""
        self.tokens = min(self.capacity, self.tokens + 1.0)

    def is_full(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.tokens + (now - self.updated) * self.rate >= self.capacity


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
class SocketLimits:
    """One socket's own limits: its ``join`` bucket, and when its last ``retry_after``
    ends with how many sends in a row came before it ended."""

    joins: TokenBucket
    retry_at: float = 0.0
    ignored_retries: int = 0


class SendLimiter:
    """This process's send, join and typing limits, and the strikes of sockets that
    ignore ``retry_after``."""

    def __init__(self, limits: SendLimits, caps: ConnectionCaps, metrics: Metrics) -> None:
        self._limits = limits
        self._joins_per_minute = caps.joins_per_minute
        self._metrics = metrics
        self._buckets: dict[str, TokenBucket] = {}
        self._typing_sent: dict[tuple[str, str], float] = {}

    def for_socket(self) -> SocketLimits:
        """The limits of a new socket (a full ``join`` bucket)."""
        per_minute = self._joins_per_minute
        return SocketLimits(TokenBucket(per_minute, per_minute / 60))

    @staticmethod
    def take_join(socket: SocketLimits) -> None:
        """Count one ``join``; ``RateLimitedError`` when the socket's bucket is empty."""
        wait = socket.joins.retry_after()
        if wait:
            raise RateLimitedError("too many joins; wait before joining again", wait)

    @staticmethod
    def strike(socket: SocketLimits) -> bool:
        """Count a send; True when it is the ``MAX_IGNORED_RETRIES``-th in a row sent
        before the last ``retry_after`` ended (the socket is then closed, 1008)."""
        if time.monotonic() < socket.retry_at:
            socket.ignored_retries += 1
            return socket.ignored_retries >= MAX_IGNORED_RETRIES
        socket.ignored_retries = 0
        return False

    @staticmethod
    def refused(socket: SocketLimits, retry_after: float) -> None:
        """The socket's send was refused: sends before ``retry_after`` are strikes."""
        socket.retry_at = time.monotonic() + retry_after

    def take_send(self, user_key: str) -> None:
        """Take a token from the user's bucket across rooms; ``RateLimitedError`` if none."""
        bucket = self._buckets.get(user_key)
        if bucket is None:
            # Twice the per-room limit, across all rooms: it only stops a user who
            # spreads a flood over many rooms; a client in one room that honours
            # retry_after is limited by the room bucket in Redis alone.
            limits = self._limits
            bucket = TokenBucket(
                CROSS_ROOM_FACTOR * limits.burst, CROSS_ROOM_FACTOR * limits.per_second
            )
            self._buckets[user_key] = bucket
        wait = bucket.retry_after()
        if wait:
            self._metrics.rate_limited.inc()
            raise RateLimitedError("too many messages; wait before sending again", wait)

    def refund_send(self, user_key: str) -> None:
        """Give the token back: the send was refused by the room's bucket in Redis."""
        if bucket := self._buckets.get(user_key):
            bucket.refund()

    def typing_due(self, user_key: str, room: str) -> bool:
        """Whether a typing relay may go out now (then it counts as sent)."""
        key, now = (user_key, room), time.monotonic()
        if now - self._typing_sent.get(key, -TYPING_INTERVAL_SECONDS) < TYPING_INTERVAL_SECONDS:
            return False
        self._typing_sent[key] = now
        return True

    def forget_idle(self, now: float | None = None) -> None:
        """Drop full buckets and stale typing times (a full bucket equals a new one)."""
        now = time.monotonic() if now is None else now
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        stale = now - TYPING_INTERVAL_SECONDS
        for key in [k for k, t in self._typing_sent.items() if t < stale]:
            del self._typing_sent[key]


async def take_action(quota: ActionQuota | None, user_id: int, what: str) -> None:
    """[issue 13] Count one of a user's actions against ``quota`` (None: unlimited);
    ``RateLimitedError`` (429 with ``Retry-After``) when its bucket is empty."""
    if quota is None:
        return
    with storage_guard():
        wait = await quota.take(user_id)
    if wait:
        raise RateLimitedError(f"too many {what}; wait before the next", wait)
