"""ModerationController: the room moderation API of SPEC §6 — members, roles, bans, mutes,
a room's settings and deleting it — checked against the caller's standing read fresh from
SQL (``room_standing.py``), written to SQL, then to the Redis rules the scripts check
(``room_rules.py``), announced to every process, and recorded in the audit log.

Every action is acknowledged only after its rules are in Redis: from then on no
process lets a banned or muted user's message in. Removals reach the user's sockets on
every process through the event bus (``RoomRules.removed``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.audit import AuditLog, AuditRecord
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    storage_guard,
)
from chatroom.controllers.limits import take_action
from chatroom.controllers.room_rules import RoomRules
from chatroom.controllers.room_standing import (
    MemberInfo,
    SanctionInfo,
    Standing,
    Target,
    is_lobby,
    list_members,
    load_standing,
    load_target,
    member_info,
    owner_count,
    staff_value,
)
from chatroom.controllers.room_values import RoomRef
from chatroom.models import Membership, MessageRepository, Room
from chatroom.models import moderation as store
from chatroom.models.database import utcnow
from chatroom.models.limits import ActionQuota
from chatroom.models.membership import MEMBER, OWNER, ROOM_ROLES
from chatroom.models.moderation import RoomBan, RoomMute
from chatroom.models.room_rules import READ_ONLY_FIELD, ban_field, mute_field, staff_field

#: The longest ban or mute with an end: ten years (without ``seconds``: until lifted).
MAX_SANCTION_SECONDS = 10 * 365 * 24 * 3600
#: Members listed per page of ``GET /api/rooms/<r>/members``.
MEMBERS_PAGE = 500


def duration(seconds: object) -> datetime | None:
    """When a ban or mute of ``seconds`` ends; None (no ``seconds``): until lifted."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise BadRequestError("seconds must be a whole number")
    if not 1 <= seconds <= MAX_SANCTION_SECONDS:
        raise BadRequestError(f"seconds must be 1..{MAX_SANCTION_SECONDS}")
    return utcnow() + timedelta(seconds=seconds)


class ModerationController:
    """The moderation actions of room owners, moderators and site admins."""

    def __init__(
        self,
        run: BlockingRunner,
        rules: RoomRules,
        messages: MessageRepository,
        audit: AuditLog,
        quota: ActionQuota | None = None,
    ) -> None:
        self._run = run
        self._rules = rules
        self._messages = messages
        self._audit = audit
        #: [issue 13] Changes one user may make (``MODERATION_LIMIT``); None: unlimited.
        self._quota = quota

    # -- who the caller and the target are -------------------------------------------

    async def standing(self, account: Account, room: object) -> Standing:
        """The caller's standing in ``room``, fresh from SQL; ``not_found`` if none."""
        name = validation.room_name(room)
        standing = await self._run(load_standing, account.id, name)
        if standing is None:
            raise NotFoundError(f"no room {name!r}")
        return standing

    async def may_moderate(self, account: Account, ref: RoomRef) -> bool:
        """Whether ``account`` is staff of ``ref`` now (SPEC §6: deleting others' messages)."""
        standing = await self._run(load_standing, account.id, ref.name)
        return standing is not None and standing.room.id == ref.id and standing.level is not None

    async def _acting(self, account: Account, room: object) -> Standing:
        """Count one change by ``account`` (``rate_limited`` past the limit, before any
        SQL), then its standing in ``room``."""
        await take_action(self._quota, account.id, "moderation actions")
        return await self.standing(account, room)

    async def _target(self, standing: Standing, user: object) -> Target:
        name = validation.username(user)
        target = await self._run(load_target, standing.room.id, name)
        if target is None:
            raise NotFoundError(f"no user {name!r}")
        return target

    async def _record(
        self, account: Account, action: str, target: str | None, room: str, detail=""
    ):
        await self._audit.record(account.name, action, target, room, detail)

    # -- members ------------------------------------------------------------------------

    async def members(
        self, account: Account, room: object, after: object = None
    ) -> tuple[list[MemberInfo], bool]:
        """The room's members by name (a page of ``MEMBERS_PAGE``), and whether more follow."""
        standing = await self.standing(account, room)
        standing.require_visible()
        start = None if after is None else validation.username(after)
        return await self._run(list_members, standing.room.id, start, MEMBERS_PAGE)

    async def add_member(
        self, account: Account, room: object, user: object
    ) -> tuple[MemberInfo, bool]:
        """Make ``user`` a member (the way into a private room); (the member, whether new)."""
        standing = await self._acting(account, room)
        standing.require_staff()
        target = await self._target(standing, user)
        if await self._run(RoomBan.of, standing.room.id, target.id) is not None:
            raise ConflictError(f"{target.name} is banned from this room; lift the ban first")
        with storage_guard():
            last_id = await self._messages.last_id(standing.room.name)
        _, created = await self._run(Membership.ensure, target.id, standing.room.id, last_id)
        info = await self._run(member_info, standing.room.id, target.id)
        info = info or MemberInfo(target.name, MEMBER)
        if created:
            await self._record(account, "add_member", target.name, standing.room.name)
            ref = standing.room
            await self._rules.added(ref.name, target.id, ref.is_private, info.role, last_id)
        return info, created

    async def remove_member(self, account: Account, room: object, user: object) -> None:
        """Kick a member, or (on oneself) leave the room for good."""
        standing = await self._acting(account, room)
        standing.require_visible()
        target = await self._target(standing, user)
        if target.id == account.id:
            if standing.room.is_direct:
                raise ForbiddenError("a direct conversation cannot be left")
            if standing.role is None:
                raise NotFoundError("you are not a member of this room")
            await self._last_owner_check(standing, target, MEMBER)
            await self._remove(standing.room, target, "left")
            return
        standing.require_staff()
        if target.role is None:
            raise NotFoundError(f"{target.name} is not a member of this room")
        if not standing.may_act_on(target.role):
            raise ForbiddenError("a moderator cannot remove an owner")
        await self._remove(standing.room, target, "kicked")
        await self._record(account, "kick", target.name, standing.room.name)

    async def _remove(self, ref: RoomRef, target: Target, reason: str) -> None:
        _, rev = await self._run(store.remove_member, ref.id, target.id)
        await self._rules.write(ref, rev, {staff_field(target.key): ""})
        await self._rules.removed(ref.name, target.id, reason)

    async def set_role(
        self, account: Account, room: object, user: object, role: object
    ) -> MemberInfo:
        """Give a member a role; ``owner`` makes them an owner too (handing over)."""
        if role not in ROOM_ROLES:
            raise BadRequestError(f"role must be one of {', '.join(ROOM_ROLES)}")
        standing = await self._acting(account, room)
        standing.require(OWNER)
        if role == OWNER and is_lobby(standing):
            raise BadRequestError("lobby has no owner")
        target = await self._target(standing, user)
        if target.role is None:
            raise NotFoundError(f"{target.name} is not a member of this room")
        if target.role != role:
            if target.id == account.id:
                await self._last_owner_check(standing, target, role)
            rev = await self._run(store.set_role, standing.room.id, target.id, role)
            await self._rules.write(
                standing.room, rev, {staff_field(target.key): staff_value(role)}
            )
            await self._record(account, "role", target.name, standing.room.name, str(role))
        info = await self._run(member_info, standing.room.id, target.id)
        return info or MemberInfo(target.name, str(role))

    async def _last_owner_check(self, standing: Standing, target: Target, role: str) -> None:
        stepping_down = target.role == OWNER and role != OWNER
        if stepping_down and await self._run(owner_count, standing.room.id) <= 1:
            raise ConflictError("you are the room's last owner: make someone else owner first")

    # -- bans and mutes -----------------------------------------------------------------

    async def ban(
        self, account: Account, room: object, user: object, seconds: object = None
    ) -> tuple[SanctionInfo, int]:
        """Ban ``user`` (removing them) until lifted or for ``seconds``; the ban and the
        newest message id stored before it took effect."""
        standing, target, until = await self._sanction_checks(account, room, user, seconds)
        ref = standing.room
        _, rev = await self._run(store.ban, ref.id, target.id, until, account.name)
        fields = {ban_field(target.key): str(store.epoch_ms(until)), staff_field(target.key): ""}
        after_id = await self._rules.write(ref, rev, fields)
        await self._rules.removed(ref.name, target.id, "banned")
        await self._record(account, "ban", target.name, ref.name, _for(seconds))
        return SanctionInfo(target.name, until, account.name), after_id

    async def mute(
        self, account: Account, room: object, user: object, seconds: object = None
    ) -> tuple[SanctionInfo, int]:
        """Mute ``user`` (they read, but neither send, edit nor react)."""
        standing, target, until = await self._sanction_checks(account, room, user, seconds)
        ref = standing.room
        rev = await self._run(store.impose, RoomMute, ref.id, target.id, until, account.name)
        after_id = await self._rules.write(
            ref, rev, {mute_field(target.key): str(store.epoch_ms(until))}
        )
        await self._record(account, "mute", target.name, ref.name, _for(seconds))
        return SanctionInfo(target.name, until, account.name), after_id

    async def _sanction_checks(
        self, account: Account, room: object, user: object, seconds: object
    ) -> tuple[Standing, Target, datetime | None]:
        until = duration(seconds)
        standing = await self._acting(account, room)
        standing.require_staff()
        target = await self._target(standing, user)
        if target.id == account.id:
            raise BadRequestError("you cannot do that to yourself")
        if not standing.may_act_on(target.role):
            raise ForbiddenError("a moderator cannot ban or mute an owner")
        return standing, target, until

    async def unban(self, account: Account, room: object, user: object) -> bool:
        """Lift a ban; whether one was in force."""
        return await self._lift(account, room, user, RoomBan, ban_field, "unban")

    async def unmute(self, account: Account, room: object, user: object) -> bool:
        """Lift a mute; whether one was in force."""
        return await self._lift(account, room, user, RoomMute, mute_field, "unmute")

    async def _lift(self, account, room, user, kind, field, action: str) -> bool:
        standing = await self._acting(account, room)
        standing.require_staff()
        target = await self._target(standing, user)
        was, rev = await self._run(store.lift, kind, standing.room.id, target.id)
        await self._rules.write(standing.room, rev, {field(target.key): ""})
        if was:
            await self._record(account, action, target.name, standing.room.name)
        return was

    async def bans(self, account: Account, room: object) -> list[SanctionInfo]:
        """The bans in force, for the room's staff."""
        standing = await self.standing(account, room)
        standing.require_staff()
        rows = await self._run(RoomBan.listing, standing.room.id)
        return [SanctionInfo(*row) for row in rows]

    async def audit(
        self, account: Account, room: object, before: int | None = None
    ) -> list[AuditRecord]:
        """The room's audit log, newest first, for the room's staff."""
        standing = await self.standing(account, room)
        standing.require_staff()
        return await self._audit.newest(standing.room.name, 100, before)

    # -- the room itself ----------------------------------------------------------------

    async def update_room(
        self, account: Account, room: object, topic: object = None, read_only: object = None
    ) -> Standing:
        """Change the topic and/or read-only (only owners, moderators and site admins post)."""
        new_topic = None if topic is None else validation.topic(topic)
        if read_only is not None and not isinstance(read_only, bool):
            raise BadRequestError("read_only must be true or false")
        if new_topic is None and read_only is None:
            raise BadRequestError("give topic or read_only")
        standing = await self._acting(account, room)
        standing.require_staff()
        rev = await self._run(store.update_room, standing.room.id, new_topic, read_only)
        if read_only is not None:
            await self._rules.write(standing.room, rev, {READ_ONLY_FIELD: "1" if read_only else ""})
        changed = [f"topic={new_topic!r}"] if new_topic is not None else []
        changed += [f"read_only={str(read_only).lower()}"] if read_only is not None else []
        await self._record(account, "room_settings", None, standing.room.name, ", ".join(changed))
        return await self.standing(account, standing.room.name)

    async def delete_room(self, account: Account, room: object) -> None:
        """Delete the room, its members and its history (not ``lobby``, not a direct room):
        its owners and site admins (in private rooms too: they need not read it)."""
        standing = await self._acting(account, room)
        if is_lobby(standing):
            raise ForbiddenError("the room 'lobby' cannot be deleted")
        admin_anywhere = standing.admin and not standing.room.is_direct
        if not admin_anywhere:
            standing.require(OWNER)
        ref = standing.room
        if await self._run(Room.delete_named, ref.name) is None:
            raise NotFoundError(f"no room {ref.name!r}")
        await self._rules.room_deleted(ref.name)
        with storage_guard():
            await self._messages.delete_room(ref.name)
        await self._record(account, "delete_room", None, ref.name)


def _for(seconds: object) -> str:
    return f"for {seconds} seconds" if seconds is not None else "until lifted"
