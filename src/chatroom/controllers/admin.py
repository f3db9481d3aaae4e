"""AdminController: the operator's actions behind ``chatroom rooms|users|history|stats``.

It works on the same database and Redis as a running server, and tells the
running processes about changes they cache (a deleted room, a disabled user,
ended sessions) with a control event on the events channel; ``ChatController`` applies it.

It is async, like the other controllers, so that it reuses the same code rather
than a synchronous copy of it: the async Redis repositories (``history``,
``publish_control``, the key names), ``AuthController.register`` for new accounts,
and ``BlockingRunner`` for SQL and hashing. The CLI runs one action per command
with ``asyncio.run`` (see ``operator_commands.run_admin``) and prints its result with
``chatroom.cli_output``; the results here are plain values with a ``public()`` form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import argon2

from chatroom.controllers import validation
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.audit import AuditLog, AuditRecord
from chatroom.controllers.auth import PASSWORD_HASHER, AuthController
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    storage_guard,
)
from chatroom.models import (
    LOBBY,
    MessageRepository,
    PresenceRepository,
    Room,
    Session,
    User,
)
from chatroom.models.files import File


def _iso(moment: datetime) -> str:
    """A naive UTC datetime from the database as ISO 8601 with its offset."""
    return moment.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RoomInfo:
    """A room as the operator sees it."""

    name: str
    topic: str
    is_direct: bool
    members: int
    messages: int
    last_id: int
    created: datetime

    def public(self) -> dict:
        return {**asdict(self), "created": _iso(self.created)}


@dataclass(frozen=True)
class UserInfo:
    """An account as the operator sees it."""

    name: str
    created: datetime
    disabled: bool
    sessions: int
    role: str = "user"

    def public(self) -> dict:
        return {**asdict(self), "created": _iso(self.created)}


@dataclass(frozen=True)
class HistoryExport:
    """A room's retained messages as the HTTP history returns them, oldest first;
    ``missing`` counts the requested ones that are no longer retained."""

    room: str
    messages: list[dict]
    missing: int

    def public(self) -> list[dict]:
        return self.messages


@dataclass(frozen=True)
class Stats:
    """What ``chatroom stats`` reports; ``connected_clients`` is None when no server runs."""

    rooms: int
    users: int
    messages: int
    processes: int
    connected_clients: int | None
    files: int = 0  # issue 15
    file_bytes: int = 0

    def public(self) -> dict:
        return asdict(self)


class AdminController:
    """Rooms, users, history export and statistics, for the operator (no sign-in)."""

    def __init__(
        self,
        run: BlockingRunner,
        messages: MessageRepository,
        presence: PresenceRepository,
        hasher: argon2.PasswordHasher = PASSWORD_HASHER,
        archive: ArchiveController | None = None,
    ) -> None:
        self._run = run
        self._messages = messages
        self._events = messages.events
        self._presence = presence
        self._hasher = hasher
        self._archive = archive  # [archive] history exports the whole archive
        self._audit = AuditLog(run)

    # -- rooms -------------------------------------------------------------

    async def list_rooms(self) -> list[RoomInfo]:
        """Every room, direct ones included, by name."""
        rooms = await self._run(Room.listing)
        names = [room.name for room in rooms]
        with storage_guard():
            last_ids = await self._messages.last_ids(names)
            retained = await self._messages.retained_counts(names)
        return [
            RoomInfo(
                name=room.name,
                topic=room.topic,
                is_direct=room.is_direct,
                members=room.member_count,
                messages=retained[room.name],
                last_id=last_ids[room.name],
                created=room.created,
            )
            for room in rooms
        ]

    async def create_room(self, name: object, topic: object = None) -> RoomInfo:
        """A public room with no members yet (users become members when they join)."""
        room_name = validation.public_room_name(name)
        room_topic = validation.topic(topic)
        room = await self._run(Room.create_public, room_name, room_topic)
        if room is None:
            raise ConflictError(f"the room {room_name!r} exists")
        with storage_guard():
            last_id = await self._messages.last_id(room_name)
        return RoomInfo(room_name, room_topic, False, 0, 0, last_id, room.created)

    async def delete_room(self, name: object) -> tuple[int, int]:
        """Delete a room (public or direct): its memberships, then its history and counter.

        Returns (members, messages) that were deleted. The SQL rows go first, so
        that from the moment the running processes drop their cached access (on
        the control event, published next) no one can use the room again; the
        Redis keys go last, after the event, so a send still in flight before it
        arrived cannot leave a history behind.
        """
        room_name = validation.room_name(name)
        if room_name == LOBBY:
            raise BadRequestError("the room 'lobby' cannot be deleted")
        members = await self._run(Room.delete_named, room_name)
        if members is None:
            raise NotFoundError(f"no room {room_name!r}")
        with storage_guard():
            await self._events.publish_control("room_deleted", room=room_name)
            messages = await self._messages.delete_room(room_name)
        await self._audit.record(None, "delete_room", None, room_name)  # issue 13
        return members, messages

    async def history(self, room: object, since: object = None) -> HistoryExport:
        """The retained messages of a room (all, or those with id > ``since``), oldest first."""
        room_name = validation.room_name(room)
        since_id = None if since is None else validation.message_id(since, "since")
        if await self._run(Room.by_name, room_name) is None:
            raise NotFoundError(f"no room {room_name!r}")
        if self._archive is not None:  # [archive] every message, from SQL and Redis
            messages = await self._archive.export(room_name, since_id or 0)
            return HistoryExport(room_name, messages, 0)
        with storage_guard():
            page = await self._messages.history(room_name, since_id)
        return HistoryExport(room_name, page.decoded(), page.missing)

    async def import_history(self, room: object, lines: list[str]) -> int:
        """[archive] Load an export (JSON lines) into the empty room ``room``."""
        room_name = validation.room_name(room)
        if self._archive is None:
            raise BadRequestError("importing needs the archive")
        return await self._archive.import_messages(room_name, lines)

    # -- users -------------------------------------------------------------

    async def list_users(self) -> list[UserInfo]:
        """Every account, by name, with its number of live sessions."""
        return await self._run(self._user_infos)

    @staticmethod
    def _user_infos(user_ids: list[int] | None = None) -> list[UserInfo]:
        users, sessions = User.listing(user_ids), Session.live_counts(user_ids)
        return [
            UserInfo(u.name, u.created, u.disabled, sessions.get(u.id, 0), u.role) for u in users
        ]

    async def create_user(self, name: object, password: object, admin: bool = False) -> UserInfo:
        """An account, exactly as if the user had registered (a member of ``lobby``);
        ``admin``: a site admin from the start (SPEC §6)."""
        account = await AuthController(self._run, self._hasher).register(name, password)
        if not admin:
            return UserInfo(account.name, account.created, False, 0)
        await self._run(User.set_role, account.id, "admin")
        await self._audit.record(None, "promote", account.name)
        return UserInfo(account.name, account.created, False, 0, "admin")

    async def set_role(
        self, name: object, role: object, actor: str | None = None
    ) -> tuple[UserInfo, bool]:
        """Make the user a site ``admin`` or a plain ``user`` (SPEC §6); the user and
        whether the role changed. Logged in the audit log, as done by ``actor`` (a
        site admin's name; None: the operator), when it did. The user's open sockets
        on every process take the role at once (``role_changed``; told again when
        unchanged, so a retry after Redis was unavailable completes it)."""
        if role not in ("admin", "user"):
            raise BadRequestError("a site role is admin or user")
        user = await self._user(name)
        changed = user.role != role
        if changed:
            await self._run(User.set_role, user.id, role)
        with storage_guard():
            await self._events.publish_control("role_changed", user_id=user.id, role=role)
        if changed:
            await self._audit.record(actor, "promote" if role == "admin" else "demote", user.name)
        return await self._info(user.id), changed

    async def audit(self, room: object = None, limit: int = 1000) -> list[AuditRecord]:
        """The audit log, newest first: every entry, or those of one room."""
        room_name = None if room is None else validation.room_name(room)
        return await self._audit.newest(room_name, limit)

    async def set_password(self, name: object, password: object) -> tuple[UserInfo, int]:
        """Give a user a new password and end all their sessions (SPEC §10).

        Returns the user and how many sessions were revoked; the running processes
        close the user's sockets (1008) on the control event.
        """
        user = await self._user(name)
        secret = validation.password(password)
        password_hash = await self._run(self._hasher.hash, secret)
        revoked = await self._run(User.change_password, user.id, password_hash)
        with storage_guard():
            await self._events.publish_control("sessions_ended", user_id=user.id)
        return await self._info(user.id), revoked

    async def disable_user(self, name: object, actor: str | None = None) -> tuple[UserInfo, int]:
        """Refuse the user's logins, revoke their sessions and close their sockets.

        Returns the user and how many sessions were revoked. The running
        processes close the user's sockets (1008) on the control event. Logged
        (``actor``: a site admin's name; None: the operator) when the account was
        enabled until now.
        """
        user = await self._user(name)
        revoked = await self._run(User.disable, user.id)
        with storage_guard():
            await self._events.publish_control("user_disabled", user_id=user.id, user=user.name_key)
        if not user.disabled:
            await self._audit.record(actor, "disable", user.name)
        return await self._info(user.id), revoked

    async def enable_user(self, name: object, actor: str | None = None) -> UserInfo:
        """Let a disabled user log in again (their old sessions stay revoked)."""
        user = await self._user(name)
        await self._run(User.enable, user.id)
        if user.disabled:
            await self._audit.record(actor, "enable", user.name)
        return await self._info(user.id)

    async def _user(self, name: object) -> User:
        user_name = validation.username(name)
        user = await self._run(User.by_name, user_name)
        if user is None:
            raise NotFoundError(f"no user {user_name!r}")
        return user

    async def _info(self, user_id: int) -> UserInfo:
        (info,) = await self._run(self._user_infos, [user_id])
        return info

    # -- statistics ----------------------------------------------------------

    async def stats(self) -> Stats:
        """Counts of rooms, users and retained messages, and the live connections."""
        names, users, (files, file_bytes) = await self._run(
            lambda: (Room.names(), User.total(), File.totals())  # File: issue 15
        )
        with storage_guard():
            retained = await self._messages.retained_counts(names)
            processes, clients = await self._presence.connected_clients()
        return Stats(
            rooms=len(names),
            users=users,
            messages=sum(retained.values()),
            processes=processes,
            connected_clients=clients if processes else None,
            files=files,
            file_bytes=file_bytes,
        )
