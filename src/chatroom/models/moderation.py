"""The ``room_ban`` and ``room_mute`` tables (SPEC §6) and the room's rules as SQL holds
them: the source of truth that models/room_rules.py copies into Redis.

Every change of a room's rules (a role, a ban, a mute, read-only) raises the room's
``rules_rev`` in the same transaction (``bump_rules_rev``); the Redis copy is written
field by field in that order, so a late write never undoes a newer one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.membership import STAFF_ROLES, Membership
from chatroom.models.room import Room
from chatroom.models.user import User


class _Sanction(BaseModel):
    """A user barred from something in a room until ``until`` (None: until lifted)."""

    room = peewee.ForeignKeyField(Room, on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    until = peewee.DateTimeField(null=True)
    #: Who imposed it (a name, not a key: the record outlives the account).
    by = peewee.CharField(max_length=32)
    created = peewee.DateTimeField(default=utcnow)

    @classmethod
    def active(cls, now: datetime | None = None) -> peewee.Expression:
        """The rows in force at ``now``."""
        return cls.until.is_null() | (cls.until > (now or utcnow()))

    @classmethod
    def of(cls, room_id: int, user_id: int) -> _Sanction | None:
        """The row in force on ``user_id`` in ``room_id``, if any."""
        query = cls.select().where((cls.room == room_id) & (cls.user == user_id) & cls.active())
        return query.first()

    @classmethod
    def impose(cls, room_id: int, user_id: int, until: datetime | None, by: str) -> None:
        """Impose it (again: a new ``until`` replaces the old one)."""
        cls.delete().where((cls.room == room_id) & (cls.user == user_id)).execute()
        cls.create(room=room_id, user=user_id, until=until, by=by)

    @classmethod
    def lift(cls, room_id: int, user_id: int) -> bool:
        """Lift it; whether one was in force."""
        was = cls.of(room_id, user_id) is not None
        cls.delete().where((cls.room == room_id) & (cls.user == user_id)).execute()
        return was

    @classmethod
    def listing(cls, room_id: int) -> list[tuple[str, datetime | None, str]]:
        """(user name, until, by) of the rows in force, by user name."""
        query = (
            cls.select(User.name, cls.until, cls.by)
            .join(User, on=(cls.user == User.id))
            .where((cls.room == room_id) & cls.active())
            .order_by(User.name_key)
        )
        return [(row.user.name, row.until, row.by) for row in query]

    @classmethod
    def in_force(cls, room_id: int) -> dict[str, datetime | None]:
        """User key -> until, of the rows in force."""
        query = (
            cls.select(User.name_key, cls.until)
            .join(User, on=(cls.user == User.id))
            .where((cls.room == room_id) & cls.active())
        )
        return {row.user.name_key: row.until for row in query}


class RoomBan(_Sanction):
    """A ban: the user may not read, join or be added to the room until it ends."""

    class Meta:
        table_name = "room_ban"
        indexes = ((("room", "user"), True),)


class RoomMute(_Sanction):
    """A mute: the user may read the room but not send, edit or react."""

    class Meta:
        table_name = "room_mute"
        indexes = ((("room", "user"), True),)


def epoch_ms(moment: datetime | None) -> int:
    """A naive UTC datetime as milliseconds since 1970; 0 for None (no end)."""
    if moment is None:
        return 0
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def bump_rules_rev(room_id: int) -> int:
    """Raise the room's ``rules_rev`` (call inside the transaction of the change); the new
    value. The UPDATE locks the row, so concurrent changes get distinct, ordered revs."""
    Room.update(rules_rev=Room.rules_rev + 1).where(Room.id == room_id).execute()
    return Room.select(Room.rules_rev).where(Room.id == room_id).scalar()


@dataclass(frozen=True)
class RulesSnapshot:
    """A room's rules as SQL holds them, read at ``rev`` (rows read after it may already
    show later changes, which are then written again, with their own rev)."""

    rev: int
    read_only: bool
    staff: dict[str, str] = field(default_factory=dict)  # user key -> owner/moderator
    bans: dict[str, int] = field(default_factory=dict)  # user key -> until, epoch ms (0: none)
    mutes: dict[str, int] = field(default_factory=dict)


def rules_snapshot(room_id: int) -> RulesSnapshot | None:
    """The room's rules in force; None when the room is gone. The rev is read first."""
    room = Room.select(Room.rules_rev, Room.read_only).where(Room.id == room_id).first()
    if room is None:
        return None
    staff_rows = (
        Membership.select(User.name_key, Membership.role)
        .join(User, on=(Membership.user == User.id))
        .where((Membership.room == room_id) & Membership.role.in_(STAFF_ROLES))
    )
    staff = {row.user.name_key: row.role for row in staff_rows}
    bans = {key: epoch_ms(until) for key, until in RoomBan.in_force(room_id).items()}
    mutes = {key: epoch_ms(until) for key, until in RoomMute.in_force(room_id).items()}
    return RulesSnapshot(int(room.rules_rev), bool(room.read_only), staff, bans, mutes)


# -- the changes: each one transaction that first raises the room's rules_rev ---------
# The UPDATE comes first: it takes the write lock at once (SQLite: no deadlock of two
# readers upgrading; PostgreSQL/MySQL: the room's row lock orders the changes).


def _atomic():
    return Room._meta.database.atomic()


def _membership(room_id: int, user_id: int) -> peewee.Expression:
    return (Membership.room == room_id) & (Membership.user == user_id)


def remove_member(room_id: int, user_id: int) -> tuple[bool, int]:
    """End a membership; (whether there was one, the new rules rev)."""
    with _atomic():
        rev = bump_rules_rev(room_id)
        gone = Membership.delete().where(_membership(room_id, user_id)).execute()
        return bool(gone), rev


def set_role(room_id: int, user_id: int, role: str) -> int:
    """Give a member a room role; the new rules rev."""
    with _atomic():
        rev = bump_rules_rev(room_id)
        Membership.update(role=role).where(_membership(room_id, user_id)).execute()
        return rev


def ban(room_id: int, user_id: int, until: datetime | None, by: str) -> tuple[bool, int]:
    """Ban a user and end their membership; (whether they were a member, the new rev)."""
    with _atomic():
        rev = bump_rules_rev(room_id)
        RoomBan.impose(room_id, user_id, until, by)
        gone = Membership.delete().where(_membership(room_id, user_id)).execute()
        return bool(gone), rev


def impose(kind: type[_Sanction], room_id: int, user_id: int, until, by: str) -> int:
    """Impose a mute (or ban, without ending the membership); the new rules rev."""
    with _atomic():
        rev = bump_rules_rev(room_id)
        kind.impose(room_id, user_id, until, by)
        return rev


def lift(kind: type[_Sanction], room_id: int, user_id: int) -> tuple[bool, int]:
    """Lift a ban or mute; (whether one was in force, the new rules rev)."""
    with _atomic():
        rev = bump_rules_rev(room_id)
        return kind.lift(room_id, user_id), rev


def update_room(room_id: int, topic: str | None, read_only: bool | None) -> int:
    """Change a room's topic and read-only flag (None: unchanged); the new rules rev."""
    changes: dict = {}
    if topic is not None:
        changes[Room.topic] = topic
    if read_only is not None:
        changes[Room.read_only] = read_only
    with _atomic():
        rev = bump_rules_rev(room_id)
        if changes:
            Room.update(changes).where(Room.id == room_id).execute()
        return rev
