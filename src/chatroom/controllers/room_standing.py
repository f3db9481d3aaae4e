"""Who may do what in a room (SPEC §6): the caller's ``Standing`` read fresh from SQL, the
rights it gives, and the members, bans and mutes as the moderation API hands them out.

The rules, in one place:

- Owners manage a room: members, roles, bans, mutes, its settings, deleting it.
  Moderators do the same except roles and deleting it, and never to an owner.
- Site admins may do everything an owner may in ``lobby`` and every public room,
  and in private rooms they are a member of. In a private room they are not in
  they may only delete it: they cannot read it, list its members or add
  themselves (that would be reading it).
- Direct rooms have no owner and no moderation; ``lobby`` has no owner.
- A banned user may do nothing in the room; a non-member of a private room sees
  it as not there (``forbidden``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from chatroom.controllers.errors import ForbiddenError
from chatroom.controllers.room_values import RoomRef
from chatroom.models import LOBBY, Membership, Room, User
from chatroom.models.membership import MODERATOR, OWNER, STAFF_ROLES
from chatroom.models.moderation import RoomBan, RoomMute


def iso(moment: datetime | None) -> str | None:
    """A naive UTC datetime from the database as ISO 8601 with its offset (None stays)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Standing:
    """The caller in one room, as SQL says now (never from a cache: off the hot path)."""

    room: RoomRef
    is_private: bool
    read_only: bool
    topic: str
    #: The caller's room role, or None when not a member.
    role: str | None
    #: The caller's site role is ``admin`` (read now, not at sign-in).
    admin: bool
    banned: bool

    @property
    def visible(self) -> bool:
        """The caller may see the room: not banned, and a member where it is private."""
        if self.banned:
            return False
        return self.role is not None or not (self.is_private or self.room.is_direct)

    @property
    def level(self) -> str | None:
        """``owner``, ``moderator`` or None: what the caller may do here as staff."""
        if self.room.is_direct or self.banned:
            return None
        if self.role == OWNER:
            return OWNER
        if self.admin and (self.role is not None or not self.is_private):
            return OWNER
        return MODERATOR if self.role == MODERATOR else None

    def require_visible(self) -> None:
        if not self.visible:
            raise ForbiddenError(_not_yours(self))

    def require(self, *levels: str) -> None:
        """``forbidden`` unless the caller's level is one of ``levels``."""
        self.require_visible()
        if self.level not in levels:
            if self.room.is_direct:
                raise ForbiddenError("direct conversations have no moderation")
            raise ForbiddenError(f"only the room's {' or '.join(levels)}s may do that")

    def require_staff(self) -> None:
        self.require(OWNER, MODERATOR)

    def may_act_on(self, target_role: str | None) -> bool:
        """Whether the caller may kick, ban or mute someone of ``target_role``: a
        moderator never acts on an owner."""
        return not (self.level == MODERATOR and target_role == OWNER)


def _not_yours(standing: Standing) -> str:
    if standing.banned:
        return "you are banned from this room"
    if standing.room.is_direct:
        return "that conversation is private"
    return "that room is private"


def load_standing(user_id: int, room_name: str) -> Standing | None:
    """The caller's standing in ``room_name`` (None: no such room). Runs in SQL."""
    room = Room.by_name(room_name)
    if room is None:
        return None
    membership = Membership.of(user_id, room.id)
    role = User.select(User.role).where(User.id == user_id).scalar()
    return Standing(
        room=RoomRef(room.id, room.name, room.is_direct, room.is_private),
        is_private=room.is_private,
        read_only=room.read_only,
        topic=room.topic,
        role=membership.role if membership is not None else None,
        admin=role == "admin",
        banned=RoomBan.of(room.id, user_id) is not None,
    )


@dataclass(frozen=True)
class Target:
    """The user a moderation action is about, and their role in the room (None: none)."""

    id: int
    name: str
    key: str
    role: str | None


def load_target(room_id: int, name: str) -> Target | None:
    """The user ``name`` (any case) and their room role; None when there is no such user."""
    user = User.by_name(name)
    if user is None:
        return None
    membership = Membership.of(user.id, room_id)
    return Target(user.id, user.name, user.name_key, membership.role if membership else None)


def owner_count(room_id: int) -> int:
    query = Membership.select().where((Membership.room == room_id) & (Membership.role == OWNER))
    return query.count()


@dataclass(frozen=True)
class MemberInfo:
    """A member as ``GET /api/rooms/<r>/members`` lists them."""

    name: str
    role: str
    muted: bool = False
    muted_until: datetime | None = None

    def public(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "muted": self.muted,
            "muted_until": iso(self.muted_until),
        }


@dataclass(frozen=True)
class SanctionInfo:
    """A ban or a mute in force: whom, until when (None: until lifted), by whom."""

    name: str
    until: datetime | None
    by: str

    def public(self) -> dict:
        return {"name": self.name, "until": iso(self.until), "by": self.by}


def list_members(room_id: int, after: str | None, limit: int) -> tuple[list[MemberInfo], bool]:
    """Up to ``limit`` members by name (after the name ``after``), and whether more follow."""
    query = (
        User.select(User.name, User.name_key, Membership.role)
        .join(Membership, on=(Membership.user == User.id))
        .where(Membership.room == room_id)
        .order_by(User.name_key)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(User.name_key > after.lower())
    rows = list(query)
    mutes = RoomMute.in_force(room_id)
    members = [
        MemberInfo(
            row.name,
            row.membership.role,
            row.name_key in mutes,
            mutes.get(row.name_key),
        )
        for row in rows[:limit]
    ]
    return members, len(rows) > limit


def member_info(room_id: int, user_id: int) -> MemberInfo | None:
    """One member as the list shows them; None when not a member."""
    membership = Membership.of(user_id, room_id)
    if membership is None:
        return None
    name = User.select(User.name).where(User.id == user_id).scalar()
    mute = RoomMute.of(room_id, user_id)
    return MemberInfo(name, membership.role, mute is not None, mute.until if mute else None)


#: (user id, room id) pairs checked per query of ``access_lost``: two ``IN`` lists of at
#: most this many values each stay far below every database's limit on parameters.
RECHECK_BATCH = 200


def access_lost(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """[issue 13] Which (user id, room id) pairs no longer give access, and why:
    ``deleted`` (no such room), ``banned`` (a ban in force), ``kicked`` (not a member
    of a room that is not a direct one). Runs in SQL, a few queries per batch of
    ``RECHECK_BATCH`` pairs; what is not in the answer is still allowed."""
    lost: dict[tuple[int, int], str] = {}
    for start in range(0, len(pairs), RECHECK_BATCH):
        batch = pairs[start : start + RECHECK_BATCH]
        users = {user for user, _ in batch}
        room_ids = {room for _, room in batch}
        rooms = Room.select(Room.id, Room.is_direct).where(Room.id.in_(room_ids))
        is_direct = dict(rooms.tuples())
        member = Membership.select(Membership.user, Membership.room).where(
            Membership.user.in_(users) & Membership.room.in_(room_ids)
        )
        members = set(member.tuples())
        ban = RoomBan.select(RoomBan.user, RoomBan.room).where(
            RoomBan.user.in_(users) & RoomBan.room.in_(room_ids) & RoomBan.active()
        )
        bans = set(ban.tuples())
        for user, room in batch:
            if room not in is_direct:
                lost[(user, room)] = "deleted"
            elif is_direct[room]:
                continue  # no bans, no kicks: its two users keep it
            elif (user, room) in bans:
                lost[(user, room)] = "banned"
            elif (user, room) not in members:
                lost[(user, room)] = "kicked"
    return lost


def staff_value(role: str | None) -> str:
    """The ``s:<user>`` value of the rules hash for a room role ('' clears it)."""
    return role if role in STAFF_ROLES else ""


def is_lobby(standing: Standing) -> bool:
    return standing.room.name == LOBBY
