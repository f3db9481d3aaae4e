"""FanoutHub: this process's end of the event bus — who is subscribed to which room here,
and the one listener that turns Redis events into frames on local sockets.

Each room's subscribers get every event exactly once and in order: the hub keeps
the newest message id it has seen per room, recovers from the history what the
subscription missed (after a reconnect, or a gap in the ids: ``room_recovery.py``),
and each ``Subscription`` drops what it already has.

[issue 16, 17] Where rooms' events come on channels of their own (shard channels in a
Redis Cluster, classic ones on one Redis: ``--pubsub-channels rooms``), a room's
channel is subscribed while it has local subscribers (``RoomChannels``, in
``controllers/room_channels.py``); the one channel then carries the control events
only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from chatroom.controllers.connection import Connection
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.redis_outage import REDIS_DOWN, Resubscribe
from chatroom.controllers.room_channels import RoomChannels
from chatroom.controllers.room_recovery import RoomRecovery
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository, PresenceRepository
from chatroom.models.epochs import EPOCH_FRAME_PREFIX
from chatroom.models.events import CONTROL_ROOM, Event
from chatroom.models.room_channels import ShardSubscriptions
from chatroom.models.room_subscriptions import RoomSubscriptions

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")


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

    def release(self, last_id: int, reset: bool = False) -> None:
        """The ``joined`` frame (history up to ``last_id``) is out: deliver what waited.

        ``reset`` (SPEC §8): that frame started the room afresh, at ``last_id``."""
        held, self.pending = self.pending or [], None
        self.last_id = last_id if reset else max(self.last_id, last_id)
        for event in held:
            self.offer(event)


class FanoutHub(RoomRecovery):
    """The local subscribers of each room, and the listener that feeds them (what it
    does when the subscription missed events is ``RoomRecovery``'s).

    ``on_control`` gets the payload of each control event (from the operator
    commands or another process), which is never relayed to sockets.
    """

    def __init__(
        self,
        messages: MessageRepository,
        presence: PresenceRepository,
        metrics: Metrics,
        on_control: Callable[[dict], None],
        epochs: RoomEpochs | None = None,
    ) -> None:
        super().__init__(messages, presence, epochs, metrics.frames_out.labels("event"))
        self._on_control = on_control
        self._out_messages = metrics.frames_out.labels("message")
        self._metrics = metrics
        #: The rooms' own channels: [issue 16] shard channels in a Cluster, [issue 17]
        #: classic ones on one Redis; None when every event comes on the one channel.
        self.channels: RoomChannels | None = None
        if messages.events.sharded:
            self.channels = RoomChannels(ShardSubscriptions(messages.events), metrics)
        elif messages.events.per_room:
            self.channels = RoomChannels(RoomSubscriptions(messages.events), metrics)
        self.listening = asyncio.Event()
        #: [issue 13] Awaited each time the subscription is confirmed, before catching up.
        self.on_subscribed: Callable[[], Awaitable[None]] | None = None

    # -- subscribers -------------------------------------------------------

    def subscribe(self, room: str, conn: Connection) -> tuple[Subscription, bool]:
        """The connection's subscription to ``room`` (holding events back until
        ``joined``), and whether it is new."""
        subs = self._subscribers.get(room)
        if subs is None:
            subs = self._subscribers[room] = {}
            if self.channels is not None:
                self.channels.open(room)
        sub = subs.get(conn)
        if sub is None:
            sub = subs[conn] = Subscription(conn, conn.account.key)
            return sub, True
        if sub.pending is None:
            sub.pending = []
        return sub, False

    async def ready(self, room: str) -> None:
        """[issue 16] Wait until this process receives ``room``'s events (at once with
        the classic channel): a join reads the history only then."""
        if self.channels is not None:
            await self.channels.ready(room)

    def joined(
        self,
        room: str,
        sub: Subscription,
        last_id: int,
        rev: int | None = None,
        epoch: str | None = None,
        reset: bool = False,
    ) -> None:
        """``joined`` (history up to ``last_id``, changes up to ``rev``, of ``epoch``)
        went out: release what ``sub`` held."""
        sub.release(last_id, reset)
        self._room_last[room] = max(self._room_last.get(room, 0), last_id)
        if rev is not None:  # [issue 12] the first subscriber's join starts the count
            self._room_rev.setdefault(room, rev)
        if epoch is not None:  # SPEC §8: the first subscriber's join tells the epoch
            self._room_epoch.setdefault(room, epoch)

    def unsubscribe(self, room: str, conn: Connection) -> Subscription | None:
        """Remove the connection's subscription to ``room``; None if it had none."""
        subs = self._subscribers.get(room)
        sub = subs.pop(conn, None) if subs is not None else None
        if sub is not None and not subs:
            del self._subscribers[room]
            self._forget_room(room)
        return sub

    def holds(self, room: str, sub: Subscription) -> bool:
        """Whether ``sub`` is still subscribed to ``room`` (not removed meanwhile)."""
        return self._subscribers.get(room, {}).get(sub.conn) is sub

    def drop_room(self, room: str) -> Iterable[Connection]:
        """Unsubscribe everyone from ``room`` (it was deleted); the connections it had."""
        self._forget_room(room, deleted=True)
        return self._subscribers.pop(room, {}).keys()

    def _forget_room(self, room: str, deleted: bool = False) -> None:
        if self.channels is not None:
            self.channels.close(room)
        if deleted and self._epochs is not None:
            self._epochs.forget(room)
        self._room_last.pop(room, None)
        self._room_rev.pop(room, None)
        self._room_epoch.pop(room, None)
        self._epoch_turns.pop(room, None)
        self._covered.pop(room, None)

    # -- fan-out -----------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Hand one published event to every local connection in its room."""
        control = event.control()
        if control is not None:  # from the operator CLI: applied here, never sent
            self._on_control(control)
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
        """Hold this process's one Redis subscription (and [issue 16, 17] the rooms' own
        channels); reconnect with backoff forever.

        The backoff is the sends' own (``redis_outage``): when Redis is back, live
        delivery resumes as soon as acknowledgements do.
        """
        rooms = None
        if self.channels is not None:
            rooms = asyncio.ensure_future(self.channels.run(self.handle, self.resync))
        try:
            await self._run_classic()
        finally:
            if rooms is not None:
                rooms.cancel()
                await asyncio.gather(rooms, return_exceptions=True)

    async def _run_classic(self) -> None:
        reconnect = Resubscribe(self._metrics)
        while True:
            try:
                await self._listen(reconnect)
            except REDIS_DOWN as exc:
                reconnect.lost(exc)
            except Exception:
                log.exception("event listener failed; restarting in %.2fs", reconnect.delay)
                reconnect.lost(None)
            self.listening.clear()
            await reconnect.wait()

    async def _listen(self, reconnect: Resubscribe) -> None:
        """One subscription: catch up on what was missed, then relay until it fails."""
        async with self._messages.events.subscribe() as events:
            reconnect.subscribed()
            if self.on_subscribed is not None:
                await self.on_subscribed()
            # Whatever was published while we were not subscribed is in the
            # history: deliver it before the live stream. [issue 16] Rooms on shard
            # channels are resynced each when their own subscription comes back.
            for room in list(self._subscribers) if self.channels is None else ():
                await self.resync(room)
            self.listening.set()
            reconnect.caught_up()
            async for event in events:
                if event.room not in self._subscribers and event.room != CONTROL_ROOM:
                    # [issue 17] nobody here: only a message's id counts (the floor)
                    if event.message_id and self._epochs is not None:
                        self._epochs.note(event.room, event.message_id)
                    continue
                await self.handle(event)

    async def handle(self, event: Event) -> None:
        """One event read from Redis: check it against what was seen of its room, then
        hand it to the room's local subscribers."""
        if event.room in self._subscribers and not await self._check_revs(event):
            return  # [issue 12] a change whose result was just sent
        if event.message_id:
            if self._epochs is not None:
                self._epochs.note(event.room, event.message_id)
            await self._check_continuity(event)
        elif event.frame.startswith(EPOCH_FRAME_PREFIX):  # SPEC §8, never relayed
            await self._new_epoch(event)
            return
        self.deliver(event)
