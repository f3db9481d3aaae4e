"""The ``membership`` table: who belongs to which room, and how far they have read."""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from chatroom.models.archive import newest_archived_in
from chatroom.models.database import BaseModel, utcnow
from chatroom.models.room import Room
from chatroom.models.user import User

#: [issue 13] The room roles (SPEC §6): owners and moderators manage a room.
OWNER, MODERATOR, MEMBER = "owner", "moderator", "member"
ROOM_ROLES = (OWNER, MODERATOR, MEMBER)
STAFF_ROLES = (OWNER, MODERATOR)


class Membership(BaseModel):
    """A user's membership of a room; ``last_read_id`` is the newest message id they read,
    ``role`` their room role (``owner``, ``moderator`` or ``member``)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="memberships")
    room = peewee.ForeignKeyField(Room, on_delete="CASCADE", backref="memberships")
    last_read_id = peewee.BigIntegerField(default=0)
    joined = peewee.DateTimeField(default=utcnow)
    role = peewee.CharField(max_length=16, default=MEMBER)

    class Meta:
        indexes = ((("user", "room"), True),)

    @classmethod
    def of(cls, user: User, room: Room) -> Membership | None:
        return cls.get_or_none((cls.user == user) & (cls.room == room))

    @classmethod
    def ensure(cls, user: User, room: Room, last_read_id: int) -> tuple[Membership, bool]:
        """The membership, created with ``last_read_id`` if it did not exist yet."""
        existing = cls.of(user, room)
        if existing is not None:
            return existing, False
        try:
            with cls._meta.database.atomic():
                return cls.create(user=user, room=room, last_read_id=last_read_id), True
        except peewee.IntegrityError:  # another process created it meanwhile
            return cls.get((cls.user == user) & (cls.room == room)), False

    @classmethod
    def member_names(cls, room_id: int, limit: int) -> list[str]:
        """The names of the room's members (at most ``limit``), by name."""
        query = (
            User.select(User.name)
            .join(cls, on=(cls.user == User.id))
            .where(cls.room == room_id)
            .order_by(User.name_key)
            .limit(limit)
        )
        return [row.name for row in query]

    @classmethod
    def for_user(cls, user: User | int) -> list[Membership]:
        query = cls.select(cls, Room).join(Room).where(cls.user == user).order_by(Room.name)
        return list(query)

    @classmethod
    def read_markers(cls, user: User | int) -> dict[str, int]:
        """The user's rooms by name (in name order), each with the newest id they read."""
        return {m.room.name: m.last_read_id for m in cls.for_user(user)}

    @classmethod
    def roles_of(cls, user: User | int) -> dict[str, str]:
        """[issue 13] The user's role in each of their rooms, by room name."""
        return {m.room.name: m.role for m in cls.for_user(user)}

    @classmethod
    def mark_read(cls, user_id: int, room_id: int, message_id: int) -> None:
        """Move the read marker forward to ``message_id`` (never backward)."""
        (
            cls.update(last_read_id=message_id)
            .where((cls.user == user_id) & (cls.room == room_id) & (cls.last_read_id < message_id))
            .execute()
        )

    @classmethod
    def mark_read_many(cls, marks: list[tuple[tuple[int, int], int]]) -> None:
        """``mark_read`` for many ((user_id, room_id), message_id) pairs in one transaction."""
        with cls._meta.database.atomic():
            for (user_id, room_id), message_id in marks:
                cls.mark_read(user_id, room_id, message_id)

    @classmethod
    def epoch_start_reads(cls, room_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """[SPEC §8] What starting the rooms' epochs reads from SQL, in one query: for
        each room id, the archive's highest id in the room and the highest read marker
        any member of it has (each 0 when none; both 0 for a room that is gone)."""
        ids = list(room_ids)
        if not ids:
            return {}
        # One row per room, each value a correlated MAX (an index lookup each), as
        # ``archive.newest_archived_ids`` reads the archive's: the same on every database.
        outer = Room.alias("r")
        archived = newest_archived_in(outer.id)
        read = cls.select(peewee.fn.MAX(cls.last_read_id)).where(cls.room == outer.id)
        query = outer.select(outer.id, archived, read).where(outer.id.in_(ids)).tuples()
        found = {room_id: (int(top or 0), int(marker or 0)) for room_id, top, marker in query}
        return {room_id: found.get(room_id, (0, 0)) for room_id in ids}

    @classmethod
    def lower_read_markers(cls, starts: dict[int, int]) -> int:
        """[SPEC §8] For each room id, the id its new epoch's ids start after: markers
        above it (ids of the lost history) go down to it, in one transaction. How many."""
        lowered = 0
        with cls._meta.database.atomic():
            for room_id, after in starts.items():
                lowered += (
                    cls.update(last_read_id=after)
                    .where((cls.room == room_id) & (cls.last_read_id > after))
                    .execute()
                )
        return lowered
