"""[issue 16, 17] The hub's rooms on channels of their own: which rooms' channels this
process subscribes to, and the listener that reads them — shard channels in a Redis
Cluster (``models.room_channels``), classic channels on one Redis or a Sentinel's
master (``models.room_subscriptions``).

``FanoutHub`` opens a room's channel when the room gets its first local subscriber
and closes it when the last one leaves (``LINGER_SECONDS`` later, so that a page
reload keeps it). The first join of a room here waits until Redis confirmed the
subscription before it reads the history (``ready``): nothing published in
between can be missed. Each later confirmation — the room's master failed over,
its slot moved, its connection broke, and ``models.room_channels`` subscribed
it again where it belongs — resyncs the room's subscribers from the history
(``FanoutHub.resync``: missed messages, changes, a new epoch), as a resubscribe
of the classic channel does for every room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chatroom.controllers.errors import UnavailableError
from chatroom.controllers.redis_outage import REDIS_DOWN, Resubscribe
from chatroom.metrics import Metrics
from chatroom.models.events import Event
from chatroom.models.room_channels import ShardSubscriptions
from chatroom.models.room_subscriptions import RoomSubscriptions
from chatroom.models.wanted_rooms import Subscribed

log = logging.getLogger(__name__)

#: A room's channel stays subscribed this long after its last local subscriber left.
LINGER_SECONDS = 5.0
#: A join waits this long for its room's subscription, then answers ``unavailable``
#: (the client retries): the room's node is down, or its slot has no master yet.
READY_TIMEOUT_SECONDS = 5.0


class RoomChannels:
    """The channels of the rooms with local subscribers, and their listener."""

    def __init__(
        self,
        subscriptions: ShardSubscriptions | RoomSubscriptions,
        metrics: Metrics,
        linger: float | None = None,
    ) -> None:
        self._subscriptions = subscriptions
        self._metrics = metrics
        self._linger = LINGER_SECONDS if linger is None else linger
        self._closing: dict[str, asyncio.TimerHandle] = {}

    def open(self, room: str) -> None:
        """``room`` got its first local subscriber: subscribe to its channel."""
        timer = self._closing.pop(room, None)
        if timer is not None:
            timer.cancel()
        self._subscriptions.want(room)

    def close(self, room: str) -> None:
        """``room``'s last local subscriber left: unsubscribe, unless one comes back soon."""
        if room in self._closing:
            return
        if self._linger <= 0:
            self._subscriptions.unwant(room)
            return
        loop = asyncio.get_running_loop()
        self._closing[room] = loop.call_later(self._linger, self._expire, room)

    def _expire(self, room: str) -> None:
        self._closing.pop(room, None)
        self._subscriptions.unwant(room)

    async def ready(self, room: str) -> None:
        """Wait until ``room``'s subscription is confirmed; ``UnavailableError`` when it
        is not within ``READY_TIMEOUT_SECONDS``."""
        try:
            await asyncio.wait_for(self._subscriptions.ready(room), READY_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise UnavailableError(
                "the room's events cannot be subscribed to now; retry later"
            ) from None

    def subscribed(self) -> set[str]:
        """The rooms whose channel is subscribed (and confirmed) now."""
        return self._subscriptions.subscribed()

    async def run(
        self,
        handle: Callable[[Event], Awaitable[None]],
        resync: Callable[[str], Awaitable[None]],
    ) -> None:
        """Read the rooms' channels forever: each event to ``handle``; a room subscribed
        again after a loss to ``resync``. Should either fail (Redis went away while it
        read the history), every room is subscribed again and resynced."""
        reconnect = Resubscribe(self._metrics)
        while True:
            try:
                async with self._subscriptions.running() as items:
                    reconnect.subscribed()
                    async for item in items:
                        if isinstance(item, Subscribed):
                            reconnect.caught_up()
                            if item.again:
                                await resync(item.room)
                        else:
                            await handle(item)
            except REDIS_DOWN as exc:
                reconnect.lost(exc)
            except Exception:
                log.exception("room channel listener failed; restarting in %.2fs", reconnect.delay)
                reconnect.lost(None)
            await reconnect.wait()
