"""The ``room`` table: public rooms and direct-message rooms."""

from __future__ import annotations

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.user import User


class Room(BaseModel):
    """A chat room. Direct rooms are named ``dm:<a>:<b>`` and visible to those two only."""

    name = peewee.CharField(max_length=80, unique=True)
    topic = peewee.CharField(max_length=200, default="")
    is_direct = peewee.BooleanField(default=False)
    created_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created = peewee.DateTimeField(default=utcnow)

    @classmethod
    def by_name(cls, name: str) -> Room | None:
        return cls.get_or_none(cls.name == name)

    @classmethod
    def ensure_public(cls, name: str, topic: str = "") -> Room:
        room, _ = cls.get_or_create(name=name, defaults={"topic": topic})
        return room

    @classmethod
    def visible_to(cls, user: User) -> list[Room]:
        """All public rooms and the user's direct rooms, by name."""
        from chatroom.models.membership import Membership

        mine = Membership.select(Membership.room).where(Membership.user == user)
        query = cls.select().where((~cls.is_direct) | (cls.id.in_(mine))).order_by(cls.name)
        return list(query)

    @classmethod
    def member_counts(cls) -> dict[int, int]:
        from chatroom.models.membership import Membership

        query = Membership.select(Membership.room, peewee.fn.COUNT(Membership.id).alias("n"))
        return {row.room_id: row.n for row in query.group_by(Membership.room)}

    @classmethod
    def delete_with_memberships(cls, room_id: int) -> int:
        """Delete the room and its memberships in one transaction; the number of members."""
        from chatroom.models.membership import Membership

        with cls._meta.database.atomic():
            members = Membership.delete().where(Membership.room == room_id).execute()
            cls.delete().where(cls.id == room_id).execute()
        return members
