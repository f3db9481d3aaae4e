"""RoomController: list, create and join rooms, direct messages, read markers, history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    storage_guard,
)
from chatroom.controllers.room_values import RoomRef, RoomSummary
from chatroom.models import (
    HistoryPage,
    Membership,
    MessageRepository,
    Room,
    RoomQuota,
    User,
)

T = TypeVar("T")


def _ref(room: Room) -> RoomRef:
    return RoomRef(id=room.id, name=room.name, is_direct=room.is_direct)


class RoomController:
    """Everything about rooms that is not the live message stream."""

    def __init__(
        self, run: BlockingRunner, messages: MessageRepository, quota: RoomQuota | None = None
    ) -> None:
        self._run = run
        self._messages = messages
        self._quota = quota
        #: [SPEC §8] the rooms' id floors and epochs, shared with the chat and the archiver.
        self.epochs = RoomEpochs(run, messages.epochs)
        #: [issue 12] Set by the composition root: per room, the caller's unread mentions.
        self.mention_counts: Callable[[str, dict[str, int]], Awaitable[dict[str, int]]] | None = (
            None
        )

    async def _mentions(self, account: Account, read: dict[str, int]) -> dict[str, int]:
        if self.mention_counts is None:
            return {}
        return await self._stored(self.mention_counts(account.key, read))

    @staticmethod
    async def _stored(call: Awaitable[T]) -> T:
        """Await a Redis call; an outage becomes ``UnavailableError``, not a raw redis error."""
        with storage_guard():
            return await call

    async def list_rooms(self, account: Account) -> list[RoomSummary]:
        """Every public room and the caller's direct rooms, with the caller's unread counts."""
        rooms, read = await self._run(
            lambda: (Room.listing(account.id), Membership.read_markers(account.id))
        )
        last_ids = await self._stored(self._messages.last_ids([r.name for r in rooms]))
        mentions = await self._mentions(account, read)
        return [
            RoomSummary(
                name=r.name,
                topic=r.topic,
                is_direct=r.is_direct,
                members=r.member_count,
                member=r.name in read,
                unread=max(0, last_ids[r.name] - read[r.name]) if r.name in read else 0,
                last_id=last_ids[r.name],
                mentions=mentions.get(r.name, 0),
            )
            for r in rooms
        ]

    async def memberships(self, account: Account) -> list[dict]:
        """The caller's rooms as ``hello`` lists them: name, unread, last_id, mentions, epoch."""
        read = await self._run(Membership.read_markers, account.id)
        heads = await self._stored(self._messages.heads(list(read)))
        without = [name for name, (_, epoch) in heads.items() if epoch is None]
        if without:  # SPEC §8: new rooms, or Redis lost them; rare, once per room
            ids = await self._run(Room.ids_of, without)
            await self.epochs.ensure_all(ids)
            heads.update(await self._stored(self._messages.heads(without)))
        mentions = await self._mentions(account, read)
        return [
            {
                "name": name,
                "unread": max(0, heads[name][0] - mark),
                "last_id": heads[name][0],
                "mentions": mentions.get(name, 0),
                "epoch": heads[name][1],  # SPEC §8
            }
            for name, mark in read.items()
        ]

    async def create(self, account: Account, name: object, topic: object = None) -> RoomSummary:
        room_name = validation.public_room_name(name)
        room_topic = validation.topic(topic)
        if self._quota is not None:
            # Every valid attempt counts, a name already taken included: checking
            # first and counting after would let concurrent requests all pass.
            wait = await self._stored(self._quota.take(account.id))
            if wait:
                raise RateLimitedError("too many rooms created; wait before creating another", wait)
        last_id = await self._stored(self._messages.last_id(room_name))
        created = await self._run(Room.create_public, room_name, room_topic, account.id, last_id)
        if created is None:
            raise ConflictError(f"the room {room_name!r} exists")
        return RoomSummary(room_name, room_topic, False, 1, True, 0, last_id)

    async def open(self, account: Account, name: object) -> RoomRef:
        """Check the caller may read the room; a direct room is created on first use."""
        room_name = validation.room_name(name)
        return await self._run(self._open_row, account.id, account.key, room_name)

    @staticmethod
    def _open_row(user_id: int, user_key: str, name: str) -> RoomRef:
        dm = validation.DM_NAME_RE.match(name)
        if dm is None:
            room = Room.by_name(name)
            if room is None or room.is_direct:
                raise NotFoundError(f"no room {name!r}")
            return _ref(room)
        first, second = dm.groups()
        if user_key not in (first, second):
            raise ForbiddenError("that conversation is private")
        if name != validation.dm_room_name(first, second):
            raise NotFoundError("direct room names list the two users in sorted order")
        room = Room.open_direct(name, (first, second), user_id)
        if room is None:
            raise NotFoundError("no such user")
        return _ref(room)

    async def join(self, account: Account, name: object) -> RoomRef:
        """Open the room and make the caller a member; a new member has nothing unread."""
        ref = await self.open(account, name)
        last_id = await self._stored(self._messages.last_id(ref.name))
        await self._run(Membership.ensure, account.id, ref.id, last_id)
        return ref

    async def history(self, account: Account, name: object, since: int | None) -> HistoryPage:
        ref = await self.open(account, name)
        return await self._stored(self._messages.history(ref.name, since))

    async def mark_read(self, account: Account, ref: RoomRef, message_id: int) -> None:
        """Everything up to ``message_id`` is read (clamped to the newest message)."""
        newest = await self._stored(self._messages.last_id(ref.name))
        await self._run(Membership.mark_read, account.id, ref.id, min(message_id, newest))

    async def find_user(self, name: str) -> Account | None:
        user = await self._run(User.by_name, name)
        return Account(user.id, user.name, user.created) if user else None
