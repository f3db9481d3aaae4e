"""The rooms a process wants the events of, and which of their subscriptions Redis
confirmed: the part that the Cluster's shard channels (``models.room_channels``) and
one Redis's per-room channels (``models.room_subscriptions``) share."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Subscribed:
    """Redis confirmed ``room``'s subscription; ``again``: after it was lost."""

    room: str
    again: bool


class WantedRooms:
    """Which rooms' channels are wanted (``want``/``unwant``, applied in the
    background by the subclass when ``_dirty`` is set) and which are confirmed."""

    def __init__(self) -> None:
        self._wanted: set[str] = set()
        #: Each subscribed room's state (wanted, or still to be unsubscribed): set while
        #: its subscription is confirmed.
        self._live: dict[str, asyncio.Event] = {}
        #: Rooms confirmed at least once since they were wanted (a later one is "again").
        self._confirmed: set[str] = set()
        self._dirty = asyncio.Event()

    def want(self, room: str) -> None:
        """Subscribe to ``room``'s channel (in the background; ``ready`` waits for it)."""
        if room not in self._wanted:
            self._wanted.add(room)
            # Wanted again before it was unsubscribed: its subscription holds on.
            self._live.setdefault(room, asyncio.Event())
            self._dirty.set()

    def unwant(self, room: str) -> None:
        """Unsubscribe from ``room``'s channel (in the background)."""
        if room in self._wanted:
            self._wanted.discard(room)
            self._dirty.set()

    async def ready(self, room: str) -> None:
        """Wait until ``room``'s subscription is confirmed (at once when it is)."""
        live = self._live.get(room)
        if live is not None:
            await live.wait()

    def subscribed(self) -> set[str]:
        """The rooms whose subscription is confirmed now."""
        return {room for room, live in self._live.items() if live.is_set()}

    async def _stop(self, keeper: asyncio.Task) -> None:
        """Leaving ``running``: stop the task that kept the subscriptions; none counts
        as confirmed any more."""
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        for live in self._live.values():
            live.clear()

    def _confirm(self, room: str) -> Subscribed | None:
        """The room's subscription was just confirmed: what to tell the listener (None
        when it was confirmed already, or is no longer wanted)."""
        live = self._live.get(room)
        if live is None or live.is_set():
            return None
        live.set()
        again = room in self._confirmed
        self._confirmed.add(room)
        return Subscribed(room, again)
