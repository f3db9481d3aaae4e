"""Riding out a Redis outage: which errors mean Redis is down, the one backoff that the
event subscription and the sends share, and the retry of an append whose outcome is
unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.errors import REDIS_UNAVAILABLE, UnavailableError, storage_guard
from chatroom.controllers.inflight import SHUTTING_DOWN
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository
from chatroom.models.limits import SendRate
from chatroom.models.messages import EpochFloorNeeded, StoredMessage

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: The errors of a Redis server that is down or unreachable.
REDIS_DOWN = (*REDIS_UNAVAILABLE, OSError)
#: Retries after a Redis failure, of a send and of the event subscription alike,
#: wait this long first and double up to the cap: delivery resumes with the acks.
REDIS_RETRY_FIRST_SECONDS = 0.05
REDIS_RETRY_MAX_SECONDS = 0.5
#: How long a send is retried when Redis fails mid-call, by default with one Redis
#: (``--redis-failover-timeout``: 30 s with Sentinel or Cluster, SPEC §8)...
AMBIGUOUS_SEND_RETRY_SECONDS = 3.0


async def append_retrying(
    messages: MessageRepository,
    stopping: asyncio.Event,
    room: str,
    user: str,
    text: str,
    client_id: str | None,
    rate: SendRate,
    files: list[dict] | None = None,
    epochs: RoomEpochs | None = None,
    room_id: int = 0,
    retry_seconds: float = AMBIGUOUS_SEND_RETRY_SECONDS,
    **fields: object,
) -> StoredMessage:
    """One append; when Redis fails mid-call, retry it for a while (not once ``stopping``).

    A connection lost after the script was sent leaves it unknown whether the
    message was stored. Every retry carries the same dedupe key (the client's
    ``client_id``, or a key made here), so a stored message is found, never
    stored twice, and ``unavailable`` means "not stored" unless Redis stays
    unreachable for longer than the retries (``retry_seconds``: long enough for a
    Sentinel or Cluster failover to finish, with Redis replicated).

    [SPEC §8] With ``epochs``, each try carries the room's floor as this process knows
    it; a room without an epoch gets it started as a join starts it (``RoomEpochs.
    ensure``: its floor, and whether a read marker is above it, from SQL), and the
    send goes again.
    """
    retry_key = None if client_id is not None else uuid.uuid4().hex
    delay = REDIS_RETRY_FIRST_SECONDS
    deadline = time.monotonic() + retry_seconds
    floor = epochs.cached(room) if epochs is not None else 0
    checked = epochs is None  # without epochs (tests, tools): 0 is the floor
    needs_epoch = False
    while True:
        try:
            if needs_epoch:  # inside the retries: Redis may be away for a moment
                assert epochs is not None
                await epochs.ensure(room_id, room)
                floor, checked, needs_epoch = max(epochs.cached(room), 0), True, False
            with storage_guard():
                stored = await messages.append(
                    room,
                    user,
                    text,
                    client_id,
                    rate,
                    retry_key=retry_key,
                    files=files,
                    floor=floor,
                    floor_checked=checked,
                    **fields,
                )
            if epochs is not None:
                epochs.note(room, stored.id)
            return stored
        except EpochFloorNeeded:  # only asked for with UNKNOWN_FLOOR, by a room with no epoch
            needs_epoch = True
            continue
        except UnavailableError:
            if time.monotonic() + delay > deadline or stopping.is_set():
                raise
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        if stopping.is_set():
            raise UnavailableError(SHUTTING_DOWN)
        delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)


class Resubscribe:
    """The event listener's backoff and its log lines: one warning when the
    subscription is lost, one line when it is back, a reconnect counted each time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.delay = REDIS_RETRY_FIRST_SECONDS
        self._subscribed_before = False
        self._lost_at: float | None = None

    def subscribed(self) -> None:
        """The subscription is confirmed (again)."""
        if self._subscribed_before:
            self._metrics.redis_reconnects.inc()
        if self._lost_at is not None:
            log.info("event subscription restored after %.1fs", time.monotonic() - self._lost_at)
            self._lost_at = None
        self._subscribed_before = True

    def caught_up(self) -> None:
        """Live delivery runs again: the next loss starts from the shortest wait."""
        self.delay = REDIS_RETRY_FIRST_SECONDS

    def lost(self, exc: BaseException | None) -> None:
        """The subscription failed: Redis is down (``exc``) or the listener broke (None)."""
        if exc is not None:
            if self._lost_at is None:
                log.warning("event subscription lost (%s); reconnecting", exc)
            log.debug("event subscription: retrying in %.2fs", self.delay)
        self._lost_at = self._lost_at or time.monotonic()

    async def wait(self) -> None:
        """Sleep before the next try; each wait doubles, up to the cap."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, REDIS_RETRY_MAX_SECONDS)
