"""BlockController: users blocking users (SPEC §6). A block closes the direct
conversation of the two, at once on every process; the blocker's browser hides
the blocked user's messages elsewhere.

Why a block reaches sockets already in the conversation without SQL per message:
the send path checks a room once per process and then trusts its access cache
(controllers/access_cache.py). A block is stored in SQL first, then a
``blocks_changed`` control event on the event bus makes every process forget the
two users' cached check of their direct room, so their next send, edit, reaction,
``typing`` or ``join`` there checks again in SQL (``check_direct``), and is refused.
Redis delivers the event to every process in order, before any message published
after it; a check in flight when it arrives is not cached (the cache's ticket).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    storage_guard,
)
from chatroom.controllers.limits import take_action
from chatroom.models import Block, EventBus, User
from chatroom.models.limits import ActionQuota

#: The most users one account may block; more is refused (each is a row).
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class BlockedUser:
    """A user the caller blocked, and since when."""

    name: str
    since: datetime

    def public(self) -> dict:
        since = self.since.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")
        return {"user": self.name, "since": since}


class BlockController:
    """Block and unblock; the direct-room check that enforces blocks."""

    def __init__(
        self,
        run: BlockingRunner,
        events: EventBus | None = None,
        quota: ActionQuota | None = None,
    ) -> None:
        self._run = run
        self._events = events
        #: [issue 13] Blocks one user may make (``BLOCKS_LIMIT``), None: unlimited.
        self._quota = quota

    async def _other(self, account: Account, name: object) -> User:
        user_name = validation.username(name)
        user = await self._run(User.by_name, user_name)
        if user is None:
            raise NotFoundError(f"no user {user_name!r}")
        if user.id == account.id:
            raise BadRequestError("you cannot block yourself")
        return user

    async def block(self, account: Account, name: object) -> tuple[str, bool]:
        """Block the user ``name``: their registered name, and whether it is new.

        Blocking again is harmless and tells the processes again (a retry after
        Redis was unavailable completes the first one).
        """
        await take_action(self._quota, account.id, "blocks")
        other = await self._other(account, name)
        count = await self._run(Block.count_by, account.id)
        if count >= MAX_BLOCKS:
            exists = await self._run(Block.between, account.id, other.name_key)
            if exists != "blocker":
                raise BadRequestError(f"at most {MAX_BLOCKS} blocked users")
        new = await self._run(Block.add, account.id, other.id)
        await self._tell(account, other)
        return other.name, new

    async def unblock(self, account: Account, name: object) -> tuple[str, bool]:
        """Lift a block: the registered name, and whether there was one. Nothing is
        cached about a refusal, but every process counts mentions by who blocked whom
        (``MentionResolver.blockers``): it is told."""
        other = await self._other(account, name)
        removed = await self._run(Block.remove, account.id, other.id)
        await self._tell(account, other)
        return other.name, removed

    async def _tell(self, account: Account, other: User) -> None:
        """Tell every process that a block between the two was made or lifted."""
        if self._events is None:
            return
        room = validation.dm_room_name(account.key, other.name_key)
        with storage_guard():
            await self._events.publish_control(
                "blocks_changed", room=room, user_ids=[account.id, other.id]
            )

    async def blocked(self, account: Account) -> list[BlockedUser]:
        """Whom the caller blocked, by name."""
        rows = await self._run(Block.listing, account.id)
        return [BlockedUser(name, since) for name, since in rows]

    async def check_direct(self, account: Account, room: str) -> None:
        """Refuse (``ForbiddenError``) the direct room ``room`` when either of its two
        users blocked the other. The room name is validated; rooms that are not the
        caller's are left to ``RoomController.open`` to refuse."""
        match = validation.DM_NAME_RE.match(room)
        if match is None or account.key not in match.groups():
            return
        first, second = match.groups()
        other = second if first == account.key else first
        if other == account.key:
            return  # a note to oneself
        between = await self._run(Block.between, account.id, other)
        if between == "blocked":
            raise ForbiddenError("this user does not take your direct messages")
        if between == "blocker":
            raise ForbiddenError("you blocked this user; unblock them to write to them")
