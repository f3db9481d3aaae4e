"""RoomRecovery: what ``FanoutHub`` knows of each subscribed room — the newest
message id, ``rev`` and epoch seen here — and how it catches the room's local
subscribers up when its subscription missed events.

A jump in the ids, a resubscribe (``resync``: after a reconnect of the classic
channel, or [issue 16] a room's shard channel subscribed again after a failover or
a slot move), or an ``epoch`` event: the missed messages are fetched from the
history and offered to each subscriber (which drops what it has), a subscriber
whose messages were trimmed meanwhile gets a ``joined`` with the exact gap, and a
room whose history Redis lost (SPEC §8) is sent afresh.

[issue 12] Edits, deletes and reactions have no message id: the hub keeps the
newest ``rev`` it has seen per room instead, and after a resubscribe sends each
subscriber the current state of every message changed since (``deleted``, or the
``updated`` frame of docs/protocol.md), as a join with ``since_rev`` would. Every
message and change raises its room's ``rev`` by one and is published in the same
script, so the revs of a room arrive dense and in order: a jump means the
subscription dropped events without resubscribing (a silent reconnect inside
redis-py), and the changes among them are fetched and sent the same way, in rev
order, before the event that showed the jump.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from chatroom.controllers import frames
from chatroom.controllers.connection import Connection
from chatroom.controllers.epochs import RoomEpochs
from chatroom.models import HistoryPage, MessageRepository, PresenceRepository
from chatroom.models.events import Event
from chatroom.models.messages import message_frame

if TYPE_CHECKING:
    from prometheus_client import Counter

    from chatroom.controllers.fanout import Subscription

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: [issue 12] The ``rev`` every change and message frame ends with (the scripts append it).
_REV_TAIL = re.compile(rb',"rev":(\d+)\}$')


class RoomRecovery:
    """The rooms' subscribers and what was seen of each room; the catch-up after a miss."""

    def __init__(
        self,
        messages: MessageRepository,
        presence: PresenceRepository,
        epochs: RoomEpochs | None,
        out_events: Counter,
    ) -> None:
        self._messages = messages
        self._presence = presence
        # [SPEC §8] every message id seen here raises the room's floor for this
        # process's sends: a failover that loses a published message is then noticed.
        self._epochs = epochs
        self._out_events = out_events
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
        # [SPEC §8] How many times each subscribed room's epoch moved here (see
        # ``epoch_turn``).
        self._epoch_turns: dict[str, int] = {}
        #: [SPEC §8] Called with a room's name when its epoch moved (heard or found here).
        self.on_epoch: Callable[[str], None] | None = None

    def epoch_moved(self, room: str, epoch: str | None) -> bool:
        """Whether ``room``'s epoch as known here is not ``epoch`` (a join that read the
        history around an epoch change: it answers with the room afresh)."""
        known = self._room_epoch.get(room)
        return known is not None and epoch is not None and known != epoch

    def epoch_turn(self, room: str) -> int:
        """How many times ``room``'s epoch moved here. A resync skips subscriptions whose
        ``joined`` is not out yet: a join that sees this change while it reads the room
        reads it again, afresh (``ConnectionRegistry.join``)."""
        return self._epoch_turns.get(room, 0)

    def _epoch_moves(self, room: str) -> None:
        if self.on_epoch is not None:
            self.on_epoch(room)
        if room in self._subscribers:
            self._epoch_turns[room] = self._epoch_turns.get(room, 0) + 1

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
        """A room started a new epoch: resync its subscribers here, unless done already
        (and joins in flight read the room again, even where its epoch was not known)."""
        self._epoch_moves(event.room)
        try:
            epoch = orjson.loads(event.frame).get("epoch")
        except orjson.JSONDecodeError:
            return
        if self.epoch_moved(event.room, epoch):
            await self._reset(event.room)

    async def _reset(self, room: str) -> None:
        """Send each subscriber of ``room`` the whole retained window of its current
        epoch (``joined`` with ``reset: true``): the client drops its copy of the room."""
        self._epoch_moves(room)
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
