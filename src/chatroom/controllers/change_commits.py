"""ChangeCommits: a computed change of a stored message committed (SPEC §5), wherever
the message is kept, and taken to the SQL archive.

A change is computed from the message as read, then committed with one
check-and-set script that also takes a send token, raises the room's ``rev`` and
publishes the change frame; if another change landed in between, the message is
read again and the change computed again, so concurrent changes never lose one
another and the last writer wins.

A message still in the room's Redis log is changed there. One trimmed from it but
kept in the SQL archive (SPEC §7: it leaves Redis only once archived) is read from
the frame of its last change, while SQL may not have that yet, else from the
archive, and committed with the archived-message script (models/message_changes.py):
the same rev, the same frame to every connection of the room. Either way the change
then goes to SQL in the background (``ArchiveController.apply_update``), retried a
few times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from chatroom.controllers.accounts import Account
from chatroom.controllers.errors import (
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.room_rules import RoomRules, refusal
from chatroom.controllers.room_values import RoomRef
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.message_changes import (
    ArchivedCopy,
    Change,
    ChangeStatus,
    MessageChangeRepository,
)
from chatroom.models.room_rules import POST, RuleRefused, RulesCheck, RuleStatus

if TYPE_CHECKING:
    from chatroom.controllers.archive import ArchiveController

log = logging.getLogger("chatroom.controllers.message_changes")

#: How often a change is recomputed when other changes keep landing first.
MAX_ATTEMPTS = 20
#: An archived message whose SQL copy is being written is read again after this
#: long, times the attempt.
STALE_WAIT_SECONDS = 0.02
#: Archive updates that failed are retried this many times, this far apart.
ARCHIVE_RETRIES, ARCHIVE_RETRY_SECONDS = 5, 2.0

#: What computes a change from a message's fields (None: nothing to change).
Compute = Callable[[dict], Change | None]


@dataclass(frozen=True)
class ChangeResult:
    """A committed (or no-op) change: the message id, and the room's rev after it
    (None for a no-op, such as reacting twice)."""

    id: int
    rev: int | None


class ChangeCommits:
    """The commit loop of the change verbs, in Redis's log or for archived messages."""

    def __init__(self, repo: MessageChangeRepository, rate: SendRate) -> None:
        self._repo = repo
        self._rate = rate
        #: Set by the composition root: the SQL archive (reads archived messages,
        #: gets every change).
        self.archive: ArchiveController | None = None
        #: [issue 13] Set by the composition root: the rooms' rules (bans, mutes,
        #: read-only) each commit script checks.
        self.rules: RoomRules | None = None
        self._tasks: set[asyncio.Task] = set()

    async def apply(
        self, account: Account, ref: RoomRef, mid: int, compute: Compute, mode: str = POST
    ) -> ChangeResult:
        """Read message ``mid`` of ``ref``, compute the change and commit it; the
        script checks the room's rules in ``mode`` (``POST``: a ban, a mute, read-only;
        ``ACCESS``: a ban only)."""
        rules = self.rules.check(account, ref, mode) if self.rules is not None else None
        for attempt in range(MAX_ATTEMPTS):
            item, commit, archived = await self._read(account, ref, mid, rules)
            change = compute(item)
            if change is None:
                return ChangeResult(mid, None)
            try:
                status, rev = await self._committing(commit(change))
            except RuleRefused as exc:  # [issue 13] a ban, a mute, read-only
                if exc.status != RuleStatus.MISSING or self.rules is None:
                    raise refusal(exc.status) from None
                await self.rules.load(ref)  # Redis lost them: from SQL, then again
                continue
            if status == ChangeStatus.CHANGED:
                self._archive(ref.name, mid, change.item, rev, settle=archived)
                return ChangeResult(mid, rev)
            # CONFLICT: changed meanwhile; GONE: trimmed meanwhile, so in the archive now.
            if status == ChangeStatus.STALE:  # SQL is being written: give it a moment
                await asyncio.sleep(STALE_WAIT_SECONDS * (attempt + 1))
        raise UnavailableError("the message keeps changing; try again")

    async def author_of(self, ref: RoomRef, mid: int) -> str:
        """The author's key of message ``mid`` (an author never changes); ``not_found``
        for a message that is not stored."""
        item = (await self._read(None, ref, mid, None))[0]
        return str(item.get("user", "")).lower()

    async def _read(
        self, account: Account | None, ref: RoomRef, mid: int, rules: RulesCheck | None
    ) -> tuple[dict, Callable[[Change], Awaitable[tuple[ChangeStatus, int]]], bool]:
        """The message as it is now, what commits a change of it, and whether it is
        only in the archive."""
        with storage_guard():
            seq, stored = await self._repo.read(ref.name, mid)
        if not 1 <= mid <= seq:
            raise NotFoundError(f"no message {mid} in {ref.name}")
        rate, user, repo = self._rate, account.key if account else "", self._repo
        if stored is not None:
            return stored.item, lambda c: repo.commit(ref.name, user, stored, c, rate, rules), False
        gone = NotFoundError(f"message {mid} of {ref.name} is no longer stored")
        if self.archive is None:
            raise gone
        with storage_guard():
            raw = await self._repo.pending_archived(ref.name, mid)
        if raw is not None:
            copy = ArchivedCopy(orjson.loads(raw), raw)
        else:
            found = await self.archive.archived_message(ref.id, mid)
            if found is None:  # trimmed unarchived (the backlog cap) or past retention
                raise gone
            item, version = found
            copy = ArchivedCopy({"type": "message", **item}, version=version)
        return (
            copy.item,
            lambda c: repo.commit_archived(ref.name, user, copy, c, rate, rules),
            True,
        )

    @staticmethod
    async def _committing(commit: Awaitable[tuple[ChangeStatus, int]]) -> tuple[ChangeStatus, int]:
        try:
            with storage_guard():
                return await commit
        except SendRateExceeded as exc:
            raise RateLimitedError(
                "too many messages; wait before sending again", exc.retry_after
            ) from None

    # -- the archive's copy ----------------------------------------------------------

    def _archive(self, room: str, mid: int, item: dict, rev: int, settle: bool) -> None:
        """Send the change to the SQL archive in the background, retrying a few times."""
        if self.archive is None:
            return
        stored = {**item, "rev": rev}
        task = asyncio.ensure_future(self._archive_retrying(room, mid, stored, rev, settle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _archive_retrying(
        self, room: str, mid: int, item: dict, rev: int, settle: bool
    ) -> None:
        assert self.archive is not None
        for attempt in range(ARCHIVE_RETRIES):
            try:
                await self.archive.apply_update(room, mid, item, rev)
                if settle:  # SQL has it: Redis need not keep the archived message's frame
                    await self._repo.settle_archived(room, item, rev)
                return
            except Exception:
                if attempt == ARCHIVE_RETRIES - 1:
                    log.exception("could not archive change %d of %s/%d", rev, room, mid)
                    return
                await asyncio.sleep(ARCHIVE_RETRY_SECONDS * (attempt + 1))

    async def settle(self) -> None:
        """Wait for the archive updates in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
