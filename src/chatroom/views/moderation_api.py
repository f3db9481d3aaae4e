"""The room moderation API of SPEC §6: members, roles, bans, mutes, a room's settings,
deleting it, and its audit log. Each handler is one ``ModerationController`` call."""

from __future__ import annotations

from chatroom.controllers.errors import BadRequestError
from chatroom.controllers.moderation import ModerationController
from chatroom.controllers.room_standing import Standing
from chatroom.controllers.validation import MAX_ID
from chatroom.views.archive import ArchiveHandler


class ModerationHandler(ArchiveHandler):
    """A moderation route: the controller, and query parameters checked by name."""

    #: The query parameters the route takes; any other is refused.
    PARAMETERS: frozenset[str] = frozenset()

    @property
    def moderation(self) -> ModerationController:
        return self.controllers.moderation

    async def prepare(self) -> None:
        await super().prepare()
        unknown = set(self.request.query_arguments) - self.PARAMETERS
        if unknown:
            raise BadRequestError(f"unknown parameter {sorted(unknown)[0]!r}")


def room_settings(standing: Standing) -> dict:
    return {
        "name": standing.room.name,
        "topic": standing.topic,
        "private": standing.is_private,
        "read_only": standing.read_only,
    }


class RoomHandler(ModerationHandler):
    """``PATCH /api/rooms/<r>`` ``{"topic"?, "read_only"?}``; ``DELETE /api/rooms/<r>``."""

    async def patch(self, room: str) -> None:
        account = self.require_user()
        body = self.json_body()
        standing = await self.moderation.update_room(
            account, room, body.get("topic"), body.get("read_only")
        )
        self.send_json({"room": room_settings(standing)})

    async def delete(self, room: str) -> None:
        await self.moderation.delete_room(self.require_user(), room)
        self.send_json({"ok": True, "room": room})


class MembersHandler(ModerationHandler):
    """``GET /api/rooms/<r>/members[?after=name]``; ``POST`` ``{"user"}`` adds one."""

    PARAMETERS = frozenset({"after"})

    async def get(self, room: str) -> None:
        account = self.require_user()
        members, more = await self.moderation.members(account, room, self.query("after"))
        self.send_json({"members": [m.public() for m in members], "more": more})

    async def post(self, room: str) -> None:
        account = self.require_user()
        body = self.json_body()
        member, created = await self.moderation.add_member(account, room, body.get("user"))
        self.send_json({"member": member.public()}, status=201 if created else 200)


class MemberHandler(ModerationHandler):
    """``DELETE /api/rooms/<r>/members/<u>`` (kick, or leave); ``PUT`` ``{"role"}``."""

    async def delete(self, room: str, user: str) -> None:
        await self.moderation.remove_member(self.require_user(), room, user)
        self.send_json({"ok": True})

    async def put(self, room: str, user: str) -> None:
        account = self.require_user()
        body = self.json_body()
        member = await self.moderation.set_role(account, room, user, body.get("role"))
        self.send_json({"member": member.public()})


class BansHandler(ModerationHandler):
    """``GET /api/rooms/<r>/bans``; ``POST`` ``{"user", "seconds"?}`` bans."""

    async def get(self, room: str) -> None:
        bans = await self.moderation.bans(self.require_user(), room)
        self.send_json({"bans": [ban.public() for ban in bans]})

    async def post(self, room: str) -> None:
        account = self.require_user()
        body = self.json_body()
        ban, after_id = await self.moderation.ban(
            account, room, body.get("user"), body.get("seconds")
        )
        self.send_json({"ban": {**ban.public(), "after_id": after_id}}, status=201)


class BanHandler(ModerationHandler):
    """``DELETE /api/rooms/<r>/bans/<u>``: lift a ban."""

    async def delete(self, room: str, user: str) -> None:
        lifted = await self.moderation.unban(self.require_user(), room, user)
        self.send_json({"ok": True, "lifted": lifted})


class MutesHandler(ModerationHandler):
    """``POST /api/rooms/<r>/mutes`` ``{"user", "seconds"?}``."""

    async def post(self, room: str) -> None:
        account = self.require_user()
        body = self.json_body()
        mute, after_id = await self.moderation.mute(
            account, room, body.get("user"), body.get("seconds")
        )
        self.send_json({"mute": {**mute.public(), "after_id": after_id}}, status=201)


class MuteHandler(ModerationHandler):
    """``DELETE /api/rooms/<r>/mutes/<u>``: lift a mute."""

    async def delete(self, room: str, user: str) -> None:
        lifted = await self.moderation.unmute(self.require_user(), room, user)
        self.send_json({"ok": True, "lifted": lifted})


class RoomAuditHandler(ModerationHandler):
    """``GET /api/rooms/<r>/audit[?before=id]``: the room's log, for its staff."""

    PARAMETERS = frozenset({"before"})

    async def get(self, room: str) -> None:
        account = self.require_user()
        before = self.query("before")
        if before is not None and not (before.isascii() and before.isdigit()):
            raise BadRequestError("before must be an entry id")
        if before is not None and int(before) > MAX_ID:
            raise BadRequestError("before must be an entry id")
        entries = await self.moderation.audit(
            account, room, None if before is None else int(before)
        )
        self.send_json({"entries": [entry.public() for entry in entries]})
