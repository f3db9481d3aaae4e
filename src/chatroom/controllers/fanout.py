"""FanoutHub: this process's end of the event bus — who is subscribed to which room here,
and the one listener that turns Redis events into frames on local sockets.

Each room's subscribers get every event exactly once and in order: the hub keeps
the newest message id it has seen per room, recovers from the history what the
subscription missed (after a reconnect, or a gap in the ids), and each
``Subscription`` drops what it already has.

[issue 12] Edits, deletes and reactions have no message id: the hub keeps the
newest ``rev`` it has seen per room instead, and after a resubscribe sends each
subscriber the current state of every message changed since (``deleted``, or the
``updated`` frame of docs/protocol.md), as a join with ``since_rev`` would. Every
message and change raises its room's ``rev`` by one and is published in the same
script, so the revs of a room arrive dense and in order: a jump means the
subscription dropped events without resubscribing (a silent reconnect inside
redis-py), and the changes among them are fetched and sent the same way, in rev
order, before the event that showed the jump.

[issue 16] In a Redis Cluster with sharded pub/sub, rooms' events come on their own
shard channels, subscribed while a room has local subscribers (``RoomChannels``,
in ``controllers/room_channels.py``); the classic channel then carries the control
events only.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import orjson

from chatroom.controllers import frames
from chatroom.controllers.connection import Connection
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.redis_outage import REDIS_DOWN, Resubscribe
from chatroom.controllers.room_channels import RoomChannels
from chatroom.metrics import Metrics
from chatroom.models import HistoryPage, MessageRepository, PresenceRepository
from chatroom.models.epochs import EPOCH_FRAME_PREFIX
from chatroom.models.events import Event
from chatroom.models.messages import message_frame
from chatroom.models.room_channels import ShardSubscriptions

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: [issue 12] The ``rev`` every change and message frame ends with (the scripts append it).
_REV_TAIL = re.compile(rb',"rev":(\d+)\}$')


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


class FanoutHub:
    """The local subscribers of each room, and the listener that feeds them.

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
        self._messages = messages
        # [SPEC §8] every message id seen here raises the room's floor for this
        # process's sends: a failover that loses a published message is then noticed.
        self._epochs = epochs
        self._presence = presence
        self._on_control = on_control
        self._out_messages = metrics.frames_out.labels("message")
        self._out_events = metrics.frames_out.labels("event")
        self._metrics = metrics
        self._subscribers: dict[str, dict[Connection, Subscription]] = {}
        # The newest message id this process has seen per subscribed room: a jump
        # means the subscription missed something, recovered from the history.
        self._room_last: dict[str, int] = {}
        # [issue 12] The newest rev this process has seen per subscribed room: what
        # changed after it is sent again after a resubscribe.
        self._room_rev: dict[str, int] = {}
        # [issue 12] After a rev jump: the rev up to which the current state of the
        # messages (by id) was just sent, so that their older change frames still
        # arriving are not applied on top of it.
        self._covered: dict[str, tuple[int, set[int]]] = {}
        # [SPEC §8] The epoch of each subscribed room as this process knows it: a new
        # one (an ``epoch`` event, or seen after a resubscribe) resyncs its sockets.
        self._room_epoch: dict[str, str] = {}
        #: [issue 16] The rooms' shard channels (a Cluster with sharded pub/sub), or None.
        self.channels: RoomChannels | None = None
        if messages.events.sharded:
            self.channels = RoomChannels(ShardSubscriptions(messages.events), metrics)
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

    def epoch_moved(self, room: str, epoch: str | None) -> bool:
        """Whether ``room``'s epoch as known here is not ``epoch`` (a join that read the
        history around an epoch change: it answers with the room afresh)."""
        known = self._room_epoch.get(room)
        return known is not None and epoch is not None and known != epoch

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
        """Hold this process's one Redis subscription (and [issue 16] the rooms' shard
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

    async def resync(self, room: str) -> None:
        """The subscription to ``room``'s events was lost and is back: send its local
        subscribers what was published meanwhile (changes, messages, a new epoch)."""
        await self._recover_changes(room)  # [issue 12]
        await self._recover(room)

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
        if self.epoch_moved(room, page.epoch):  # SPEC §8: lost while we were away
            await self._reset(room)
            return
        seen = self._room_last.get(room, 0)
        if page.last_id < seen and self._epochs is not None:
            # SPEC §8: Redis holds fewer messages than were published here (a failover
            # to a replica that had not received them): a new epoch above them.
            await self._epochs.went_back(room, seen)
            await self._reset(room)
            return
        online: list[str] | None = None
        for sub in ready:
            items, missing = page.after(sub.last_id)
            if not missing:
                for item in items:
                    sub.offer(Event(room, sub.last_id + 1, "", message_frame(item)))
                continue
            # Trimmed before we could relay them: resync this socket like a join
            # with ``since``, so the client sees the exact gap.
            if online is None:
                online = await self._presence.online(room)
            partial = HistoryPage(
                room, items, sub.last_id + missing + len(items), missing, page.rev
            )
            sub.conn.deliver(frames.joined(partial, online))
            sub.last_id = partial.last_id
        self._room_last[room] = max(self._room_last.get(room, 0), page.last_id)

    # -- [SPEC §8] epochs ------------------------------------------------------

    async def _new_epoch(self, event: Event) -> None:
        """A room started a new epoch: resync its subscribers here, unless done already."""
        try:
            epoch = orjson.loads(event.frame).get("epoch")
        except orjson.JSONDecodeError:
            return
        if self.epoch_moved(event.room, epoch):
            await self._reset(event.room)

    async def _reset(self, room: str) -> None:
        """Send each subscriber of ``room`` the whole retained window of its current
        epoch (``joined`` with ``reset: true``): the client drops its copy of the room."""
        ready = [s for s in self._subscribers.get(room, {}).values() if s.pending is None]
        page = await self._messages.history(room)
        online = await self._presence.online(room)
        frame = frames.joined(page, online, reset=True)
        for sub in ready:
            sub.conn.deliver(frame)
            sub.last_id = page.last_id
        self._room_last[room] = page.last_id
        if page.rev is not None:
            self._room_rev[room] = page.rev
        if page.epoch is not None:
            self._room_epoch[room] = page.epoch
        log.warning("room %s has a new epoch (Redis lost its history): resynced", room)

    # -- [issue 12] changes missed while unsubscribed -------------------------

    async def _check_revs(self, event: Event) -> bool:
        """Note the rev a message or change frame of a subscribed room carries; when it
        is not the next one, first send the changes the subscription dropped. False
        when the event is a change already contained in the state just sent."""
        frame = event.frame
        match = _REV_TAIL.search(frame, max(0, len(frame) - 32))  # only the tail
        if match is None:  # presence, typing: no rev
            return True
        rev, room = int(match.group(1)), event.room
        last = self._room_rev.get(room)
        if last is not None and rev > last + 1:
            # Missed messages come back by their ids (``_check_continuity``, after this).
            log.warning("events of %r were dropped (rev %d after %d): resending", room, rev, last)
            await self._recover_changes(room)
        if room in self._subscribers and rev > self._room_rev.get(room, 0):
            self._room_rev[room] = rev
        covered = self._covered.get(room)
        if covered is None or event.message_id:  # (a message's copies are deduplicated by id)
            return True
        if rev > covered[0]:
            del self._covered[room]
            return True
        return orjson.loads(frame).get("id") not in covered[1]

    async def _recover_changes(self, room: str) -> None:
        """Send the subscribers of ``room`` the current state of each message they
        have that changed after the newest rev seen here (the ``updates`` of a join
        with ``since_rev``): a ``deleted`` frame, or an ``updated`` one. Their change
        frames up to that state's rev, still on their way, are then dropped."""
        since_rev = self._room_rev.get(room)
        ready = [s for s in self._subscribers.get(room, {}).values() if s.pending is None]
        if since_rev is None or not ready:
            return
        # ``since`` past the newest id: every retained message changed since is an update.
        page = await self._messages.history(room, sys.maxsize, since_rev)
        changed = sorted((orjson.loads(item) for item in page.updates), key=_rev_of)
        for item in changed:
            frame = frames.current_state(room, item)
            for sub in ready:
                if item.get("id", 0) <= sub.last_id:
                    sub.conn.deliver(frame)
            self._out_events.inc(len(ready))
        if page.rev is not None and page.rev > self._room_rev.get(room, 0):
            self._room_rev[room] = page.rev
        if changed and page.rev is not None and room in self._subscribers:
            self._covered[room] = (page.rev, {item.get("id") for item in changed})


def _rev_of(item: dict) -> int:
    rev = item.get("rev")
    return rev if isinstance(rev, int) else 0
