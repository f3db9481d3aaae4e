"""The ``room`` table: public, private and direct-message rooms."""

from __future__ import annotations

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.user import User

#: The room every user belongs to: created with the schema, never deleted.
LOBBY = "lobby"


class Room(BaseModel):
    """A chat room. Direct rooms are named ``dm:<a>:<b>`` and visible to those two only;
    private rooms (SPEC §6) to their members only."""

    name = peewee.CharField(max_length=80, unique=True)
    topic = peewee.CharField(max_length=200, default="")
    is_direct = peewee.BooleanField(default=False)
    created_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created = peewee.DateTimeField(default=utcnow)
    #: [issue 13] Only members see the room (SPEC §6).
    is_private = peewee.BooleanField(default=False)
    #: [issue 13] Only owners and moderators (and site admins) post.
    read_only = peewee.BooleanField(default=False)
    #: [issue 13] Raised by every change of the room's rules (roles, bans, mutes,
    #: read-only): orders the writes of the rules to Redis (models/room_rules.py).
    rules_rev = peewee.BigIntegerField(default=0)

    @classmethod
    def by_name(cls, name: str) -> Room | None:
        return cls.get_or_none(cls.name == name)

    @classmethod
    def ids_of(cls, names: list[str]) -> dict[str, int]:
        """The ids of the rooms named (names of no room are left out)."""
        query = cls.select(cls.name, cls.id).where(cls.name.in_(names))
        return {name: room_id for name, room_id in query.tuples()}

    @classmethod
    def ensure_public(cls, name: str, topic: str = "") -> Room:
        room, _ = cls.get_or_create(name=name, defaults={"topic": topic})
        return room

    @classmethod
    def visible_to(cls, user: User | int) -> list[Room]:
        """All public rooms, and the direct and private rooms the user is a member of,
        by name."""
        from chatroom.models.membership import Membership

        mine = Membership.select(Membership.room).where(Membership.user == user)
        public = ~cls.is_direct & ~cls.is_private
        query = cls.select().where(public | (cls.id.in_(mine))).order_by(cls.name)
        return list(query)

    @classmethod
    def listing(cls, user: User | int | None = None) -> list[Room]:
        """Rooms by name, each with its ``member_count``: every room (direct ones too),
        or those ``user`` may see (``visible_to``)."""
        rooms = list(cls.select().order_by(cls.name)) if user is None else cls.visible_to(user)
        counts = cls.member_counts()
        for room in rooms:
            room.member_count = counts.get(room.id, 0)
        return rooms

    @classmethod
    def names(cls) -> list[str]:
        """The name of every room, direct ones too."""
        return [room.name for room in cls.select(cls.name)]

    @classmethod
    def member_counts(cls) -> dict[int, int]:
        from chatroom.models.membership import Membership

        query = Membership.select(Membership.room, peewee.fn.COUNT(Membership.id).alias("n"))
        return {row.room_id: row.n for row in query.group_by(Membership.room)}

    @classmethod
    def create_public(
        cls,
        name: str,
        topic: str,
        creator: int | None = None,
        last_read_id: int = 0,
        private: bool = False,
    ) -> Room | None:
        """A new room (``private``: members only), or None when the name is taken. A
        ``creator`` becomes its first member and owner, having read up to
        ``last_read_id``, in the same transaction."""
        from chatroom.models.membership import OWNER, Membership

        try:
            with cls._meta.database.atomic():
                room = cls.create(name=name, topic=topic, created_by=creator, is_private=private)
                if creator is not None:
                    Membership.create(
                        user=creator, room=room, last_read_id=last_read_id, role=OWNER
                    )
        except peewee.IntegrityError:
            return None
        return room

    @classmethod
    def open_direct(cls, name: str, user_keys: tuple[str, str], creator: int) -> Room | None:
        """The direct room ``name`` of the users ``user_keys``, created on first use with
        both as members; None when either user does not exist."""
        from chatroom.models.membership import Membership

        room = cls.by_name(name)
        if room is not None:
            return room
        users = [User.by_name(key) for key in user_keys]
        if None in users:
            return None
        try:
            with cls._meta.database.atomic():
                room = cls.create(name=name, is_direct=True, created_by=creator)
                for user in {u.id: u for u in users}.values():  # one, in a note-to-self
                    Membership.create(user=user, room=room, last_read_id=0)
        except peewee.IntegrityError:  # the other user opened it at the same moment
            room = cls.by_name(name)
        return room

    @classmethod
    def delete_named(cls, name: str) -> int | None:
        """Delete the room and its memberships in one transaction; the number of
        members it had, or None when there is no such room."""
        from chatroom.models.membership import Membership

        with cls._meta.database.atomic():
            room = cls.by_name(name)
            if room is None:
                return None
            members = Membership.delete().where(Membership.room == room.id).execute()
            cls.delete().where(cls.id == room.id).execute()
        return members
