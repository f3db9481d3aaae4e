"""RoomRules: a room's rules (bans, mutes, staff, read-only) copied from SQL into the Redis
hash that the send, edit and react scripts check (models/room_rules.py), the refusals
those scripts answer turned into errors, and removals announced to every process.

A change is written to SQL first (with a new ``rules_rev``), then to Redis, then
acknowledged: from the acknowledgement on, every script sees it. When the hash is
missing (a new room; a Redis that lost its data) the scripts refuse with
``MISSING``; ``retrying`` loads the rules from SQL and runs the change again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    ChatError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.room_values import RoomRef
from chatroom.models.events import EventBus
from chatroom.models.moderation import rules_snapshot
from chatroom.models.room_rules import (
    NONE,
    POST,
    READ_ONLY_FIELD,
    RoomRulesRepository,
    RuleRefused,
    RulesCheck,
    RuleStatus,
    ban_field,
    mute_field,
    staff_field,
)

T = TypeVar("T")

#: How often a change is tried while the rules keep going missing (a Redis flushed
#: again and again): then it is ``unavailable``.
LOAD_ATTEMPTS = 3

#: Why a user lost a room (the ``reason`` of the ``removed`` frame, SPEC §6; ``left``
#: is a user's own leaving for good).
REMOVAL_REASONS = ("kicked", "banned", "deleted", "left")


class RemovedError(ForbiddenError):
    """The user is banned from the room: ``forbidden``, and their access is forgotten."""


def refusal(status: RuleStatus) -> ChatError:
    """The error a refusal of the rules answers."""
    if status == RuleStatus.BANNED:
        return RemovedError("you are banned from this room")
    if status == RuleStatus.MUTED:
        return ForbiddenError("you are muted in this room")
    if status == RuleStatus.READ_ONLY:
        return ForbiddenError("this room is read-only: only its owners and moderators post")
    return UnavailableError("the room's rules are not loaded; retry")


class RoomRules:
    """The Redis copy of rooms' rules: checks for the scripts, loads, writes, removals."""

    def __init__(self, run: BlockingRunner, repo: RoomRulesRepository, events: EventBus) -> None:
        self._run = run
        self._repo = repo
        self._events = events
        self._loading: dict[int, asyncio.Future[None]] = {}

    def check(self, account: Account, ref: RoomRef, mode: str = POST) -> RulesCheck:
        """What a script checks for ``account``'s change to ``ref`` (direct rooms: nothing;
        a site admin may post in a read-only room)."""
        key = self._repo.key(ref.name, ref.id)
        if ref.is_direct:
            return RulesCheck(key, account.key, NONE)
        return RulesCheck(key, account.key, mode, account.is_admin)

    async def retrying(self, ref: RoomRef, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` (a script call that checks the rules); when the rules are
        missing, load them from SQL and run it again. A refusal becomes its error."""
        for _ in range(LOAD_ATTEMPTS):
            try:
                return await attempt()
            except RuleRefused as exc:
                if exc.status != RuleStatus.MISSING:
                    raise refusal(exc.status) from None
            await self.load(ref)
        raise refusal(RuleStatus.MISSING)

    async def load(self, ref: RoomRef) -> None:
        """Copy the room's whole rule set from SQL into Redis. Concurrent loads of one
        room in this process share one (after a flush, every sender finds it missing)."""
        loading = self._loading.get(ref.id)
        if loading is None:
            loading = self._loading[ref.id] = asyncio.ensure_future(self._load(ref))
            loading.add_done_callback(lambda _: self._loading.pop(ref.id, None))
        await asyncio.shield(loading)

    async def _load(self, ref: RoomRef) -> None:
        snapshot = await self._run(rules_snapshot, ref.id)
        if snapshot is None:
            raise NotFoundError(f"no room {ref.name!r}")
        fields = {READ_ONLY_FIELD: "1" if snapshot.read_only else ""}
        fields.update({staff_field(user): role for user, role in snapshot.staff.items()})
        fields.update({ban_field(user): str(until) for user, until in snapshot.bans.items()})
        fields.update({mute_field(user): str(until) for user, until in snapshot.mutes.items()})
        with storage_guard():
            await self._repo.write(ref.name, ref.id, snapshot.rev, fields, whole=True)

    async def write(self, ref: RoomRef, rev: int, fields: dict[str, str]) -> int:
        """Write changed fields as of ``rev`` (value ``""`` clears one); the room's newest
        message id at that moment (everything after it was checked against them)."""
        with storage_guard():
            return await self._repo.write(ref.name, ref.id, rev, fields)

    async def removed(self, room: str, user_id: int, reason: str) -> None:
        """Tell every process that ``user_id`` lost ``room``: their sockets get ``removed``
        and leave it, their access checks of it are forgotten. The shared access version
        goes up first, so a process that misses the event drops its older checks when it
        subscribes again."""
        with storage_guard():
            version = await self._events.next_access_version()
            await self._events.publish_control(
                "member_removed", room=room, user_id=user_id, reason=reason, version=version
            )

    async def added(self, room: str, user_id: int, private: bool, role: str, last_id: int) -> None:
        """[issue 13] Tell every process that ``user_id`` is a member of ``room`` now:
        their sockets get ``added`` (the sidebar shows the room at once). Nothing was
        cached about a refusal, so no access check needs dropping."""
        with storage_guard():
            await self._events.publish_control(
                "member_added",
                room=room,
                user_id=user_id,
                private=private,
                role=role,
                last_id=last_id,
            )

    async def room_deleted(self, room: str) -> None:
        """Tell every process that ``room`` is gone: its sockets get ``removed`` (reason
        ``deleted``) and leave it, every access check of it is forgotten."""
        with storage_guard():
            version = await self._events.next_access_version()
            await self._events.publish_control("room_deleted", room=room, version=version)
