"""RoomController: list, create and join rooms, direct messages, read markers, history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    storage_guard,
)
from chatroom.controllers.room_standing import access_lost
from chatroom.controllers.room_values import RoomRef, RoomSummary
from chatroom.models import (
    HistoryPage,
    Membership,
    MessageRepository,
    Room,
    RoomQuota,
    User,
)
from chatroom.models.membership import OWNER
from chatroom.models.moderation import RoomBan

T = TypeVar("T")


def _ref(room: Room) -> RoomRef:
    return RoomRef(room.id, room.name, room.is_direct, room.is_private)


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
        #: Set by the composition root: refuses a direct room between users who block
        #: each other (controllers/blocks.py, SPEC §6).
        self.direct_gate: Callable[[Account, str], Awaitable[None]] | None = None

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
        """Every public room and the caller's direct and private rooms, with the caller's
        unread counts and role."""
        rooms, mine = await self._run(
            lambda: (Room.listing(account.id), Membership.for_user(account.id))
        )
        read = {m.room.name: m.last_read_id for m in mine}
        roles = {m.room.name: m.role for m in mine}
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
                private=r.is_private,
                role=roles.get(r.name),
            )
            for r in rooms
        ]

    async def memberships(self, account: Account) -> list[dict]:
        """The caller's rooms as ``hello`` lists them: name, unread, last_id, mentions,
        private, role, epoch."""
        mine = await self._run(Membership.for_user, account.id)
        read = {m.room.name: m.last_read_id for m in mine}
        heads = await self._stored(self._messages.heads(list(read)))
        without = [name for name, (_, epoch) in heads.items() if epoch is None]
        if without:  # SPEC §8: new rooms, or Redis lost them; rare, once per room
            ids = await self._run(Room.ids_of, without)
            await self.epochs.ensure_all(ids)
            heads.update(await self._stored(self._messages.heads(without)))
        mentions = await self._mentions(account, read)
        return [
            {
                "name": m.room.name,
                "unread": max(0, heads[m.room.name][0] - m.last_read_id),
                "last_id": heads[m.room.name][0],
                "mentions": mentions.get(m.room.name, 0),
                "private": m.room.is_private,
                "role": m.role,
                "epoch": heads[m.room.name][1],  # SPEC §8
            }
            for m in mine
        ]

    async def create(
        self, account: Account, name: object, topic: object = None, private: object = None
    ) -> RoomSummary:
        """A new room, the caller its owner; ``private`` (SPEC §6): members only."""
        room_name = validation.public_room_name(name)
        room_topic = validation.topic(topic)
        if private is not None and not isinstance(private, bool):
            raise BadRequestError("private must be true or false")
        if self._quota is not None:
            # Every valid attempt counts, a name already taken included: checking
            # first and counting after would let concurrent requests all pass.
            wait = await self._stored(self._quota.take(account.id))
            if wait:
                raise RateLimitedError("too many rooms created; wait before creating another", wait)
        last_id = await self._stored(self._messages.last_id(room_name))
        created = await self._run(
            Room.create_public, room_name, room_topic, account.id, last_id, bool(private)
        )
        if created is None:
            raise ConflictError(f"the room {room_name!r} exists")
        return RoomSummary(
            room_name, room_topic, False, 1, True, 0, last_id, private=bool(private), role=OWNER
        )

    async def open(self, account: Account, name: object) -> RoomRef:
        """Check the caller may read the room; a direct room is created on first use."""
        room_name = validation.room_name(name)
        if self.direct_gate is not None and room_name.startswith("dm:"):
            await self.direct_gate(account, room_name)  # before a new room is made
        return await self._run(self._open_row, account.id, account.key, room_name)

    @staticmethod
    def _open_row(user_id: int, user_key: str, name: str) -> RoomRef:
        dm = validation.DM_NAME_RE.match(name)
        if dm is None:
            room = Room.by_name(name)
            if room is None or room.is_direct:
                raise NotFoundError(f"no room {name!r}")
            # [issue 13] the same answer as someone else's direct room: forbidden.
            if RoomBan.of(room.id, user_id) is not None:
                raise ForbiddenError("you are banned from this room")
            if room.is_private and Membership.of(user_id, room.id) is None:
                raise ForbiddenError("that room is private")
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
        await self._run(self._join_row, account.id, ref, last_id)
        return ref

    @staticmethod
    def _join_row(user_id: int, ref: RoomRef, last_id: int) -> None:
        """[issue 13] Make the user a member of a room they were just allowed to open,
        unless a kick or ban landed since: a private room's membership is only ever
        made by adding (``join`` never re-creates one a kick just removed), and a new
        membership that a ban overtook is taken back."""
        if Membership.of(user_id, ref.id) is not None:
            return
        if ref.is_private:
            raise ForbiddenError("that room is private")
        _, created = Membership.ensure(user_id, ref.id, last_id)
        if created and RoomBan.of(ref.id, user_id) is not None:
            Membership.delete().where(
                (Membership.user == user_id) & (Membership.room == ref.id)
            ).execute()
            raise ForbiddenError("you are banned from this room")

    async def history(self, account: Account, name: object, since: int | None) -> HistoryPage:
        ref = await self.open(account, name)
        return await self._stored(self._messages.history(ref.name, since))

    async def mark_read(self, account: Account, ref: RoomRef, message_id: int) -> None:
        """Everything up to ``message_id`` is read (clamped to the newest message)."""
        newest = await self._stored(self._messages.last_id(ref.name))
        await self._run(Membership.mark_read, account.id, ref.id, min(message_id, newest))

    async def access_lost(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """[issue 13] Which (user id, room id) pairs lost access, and why (``access_lost``)."""
        return await self._run(access_lost, pairs)

    async def find_user(self, name: str) -> Account | None:
        user = await self._run(User.by_name, name)
        return Account(user.id, user.name, user.created, user.role) if user else None
