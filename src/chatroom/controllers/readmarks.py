"""Read markers that move as a side effect of sending, written in batches off the hot path."""

from __future__ import annotations

import logging

from chatroom.controllers.blocking import BlockingRunner
from chatroom.models import Membership

log = logging.getLogger(__name__)


class ReadMarkerBuffer:
    """Coalesces read-marker moves in memory; ``flush`` writes them in one transaction.

    A sender has read their own message, but a SQL write per message would put the
    database on the per-message path; instead the newest id per (user, room) is kept
    and written about once a second.
    """

    def __init__(self, run: BlockingRunner) -> None:
        self._run = run
        self._pending: dict[tuple[int, int], int] = {}
        # The ids of the rooms with pending marks, by name (``drop_room``).
        self._rooms: dict[str, int] = {}

    def mark(self, user_id: int, room_id: int, message_id: int, room: str = "") -> None:
        key = (user_id, room_id)
        if message_id > self._pending.get(key, 0):
            self._pending[key] = message_id
            self._rooms[room] = room_id

    def drop_room(self, room: str) -> None:
        """[SPEC §8] ``room`` started a new epoch: the marks waiting for it name ids of
        the old one, maybe of messages Redis lost, which the new epoch's ids may reuse;
        written after the archiver lowered the room's markers, they would make new
        messages count as read. Dropped (the archiver lowers what SQL holds)."""
        room_id = self._rooms.pop(room, None)
        if room_id is not None:
            self._pending = {k: v for k, v in self._pending.items() if k[1] != room_id}

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._rooms = {}
        try:
            await self._run(Membership.mark_read_many, list(pending.items()))
        except Exception as exc:  # unread counts are advisory: log, never crash chat
            log.warning("could not save %d read markers: %s", len(pending), exc)
