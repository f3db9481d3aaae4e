"""AdminController: the operator's actions behind ``chatroom rooms|users|history|stats``.

It works on the same database and Redis as a running server, and tells the
running processes about changes they cache (a deleted room, a disabled user,
ended sessions) with a control event on the events channel; ``ChatController`` applies it.

It is async, like the other controllers, so that it reuses the same code rather
than a synchronous copy of it: the async Redis repositories (``history``,
``publish_control``, the key names), ``AuthController.register`` for new accounts,
and ``BlockingRunner`` for SQL and hashing. The CLI runs one action per command
with ``asyncio.run`` (see ``server.run_admin``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import argon2
import peewee

from chatroom.controllers import validation
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.auth import PASSWORD_HASHER, AuthController
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    storage_guard,
)
from chatroom.models import (
    MessageRepository,
    PresenceRepository,
    Room,
    Session,
    User,
    database,
)

#: The room every user belongs to; it cannot be deleted.
LOBBY = "lobby"


def _iso(moment: datetime) -> str:
    """A naive UTC datetime from the database as ISO 8601 with its offset."""
    return moment.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters escaped, one line.

    Every character ``str.isprintable`` refuses is shown as its escape: C0 and
    C1 controls, bidi embeddings, overrides and isolates (U+202A-U+202E,
    U+2066-U+2069), the marks U+200E/U+200F, line and paragraph separators.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# Only non-ASCII characters (and DEL) can be unprintable in json.dumps' output: it
# escapes the ASCII controls itself.
_JSON_SUSPECT_RE = re.compile(r"[^\x20-\x7e\n]")


def _json_escape(match: re.Match) -> str:
    char = match.group()
    if char.isprintable():
        return char
    code = ord(char)
    if code > 0xFFFF:  # JSON writes a character outside the BMP as a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def printable_json(data: object, indent: int | None = 2) -> str:
    """``data`` as indented JSON that is safe to print on a terminal.

    Letters of any script stay as they are, but every character ``printable``
    escapes is written as a JSON ``\\uXXXX`` escape instead (the same text once
    parsed): a bidi override or a C1 control in a message cannot reorder, hide
    or forge what an operator sees of ``chatroom history --json``. ``indent=None``:
    one line (JSON lines).
    """
    return _JSON_SUSPECT_RE.sub(_json_escape, json.dumps(data, indent=indent, ensure_ascii=False))


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
        return {
            "name": self.name,
            "topic": self.topic,
            "is_direct": self.is_direct,
            "members": self.members,
            "messages": self.messages,
            "last_id": self.last_id,
            "created": _iso(self.created),
        }

    def line(self) -> str:
        topic = f"  {printable(self.topic)}" if self.topic else ""
        return f"{self.name}  {self.members} members  {self.messages} messages{topic}"


@dataclass(frozen=True)
class UserInfo:
    """An account as the operator sees it."""

    name: str
    created: datetime
    disabled: bool
    sessions: int

    def public(self) -> dict:
        return {
            "name": self.name,
            "created": _iso(self.created),
            "disabled": self.disabled,
            "sessions": self.sessions,
        }

    def line(self) -> str:
        state = "  disabled" if self.disabled else ""
        return f"{self.name}  created {_iso(self.created)}  {self.sessions} sessions{state}"


@dataclass(frozen=True)
class HistoryExport:
    """A room's retained messages as the HTTP history returns them, oldest first;
    ``missing`` counts the requested ones that are no longer retained."""

    room: str
    messages: list[dict]
    missing: int

    def public(self) -> list[dict]:
        return self.messages

    def lines(self) -> list[str]:
        return [
            "{}  {}  {}: {}".format(
                m["id"],
                datetime.fromtimestamp(m["ts"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                m["user"],
                printable(m["text"]),
            )
            for m in self.messages
        ]


@dataclass(frozen=True)
class Stats:
    """What ``chatroom stats`` reports; ``connected_clients`` is None when no server runs."""

    rooms: int
    users: int
    messages: int
    processes: int
    connected_clients: int | None

    def public(self) -> dict:
        return {
            "rooms": self.rooms,
            "users": self.users,
            "messages": self.messages,
            "processes": self.processes,
            "connected_clients": self.connected_clients,
        }

    def lines(self) -> list[str]:
        clients = "no server running" if self.connected_clients is None else self.connected_clients
        return [
            f"rooms: {self.rooms}",
            f"users: {self.users}",
            f"messages retained: {self.messages}",
            f"serving processes: {self.processes}",
            f"connected clients: {clients}",
        ]


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
        self._presence = presence
        self._hasher = hasher
        self._archive = archive  # [archive] history exports the whole archive

    # -- rooms -------------------------------------------------------------

    async def list_rooms(self) -> list[RoomInfo]:
        """Every room, direct ones included, by name."""
        rooms, members = await self._run(
            lambda: (list(Room.select().order_by(Room.name)), Room.member_counts())
        )
        names = [room.name for room in rooms]
        with storage_guard():
            last_ids = await self._messages.last_ids(names)
            retained = await self._messages.retained_counts(names)
        return [
            RoomInfo(
                name=room.name,
                topic=room.topic,
                is_direct=room.is_direct,
                members=members.get(room.id, 0),
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
        room = await self._run(self._create_room_row, room_name, room_topic)
        with storage_guard():
            last_id = await self._messages.last_id(room_name)
        return RoomInfo(room_name, room_topic, False, 0, 0, last_id, room.created)

    @staticmethod
    def _create_room_row(name: str, topic: str) -> Room:
        try:
            with database.atomic():
                return Room.create(name=name, topic=topic)
        except peewee.IntegrityError as exc:
            raise ConflictError(f"the room {name!r} exists") from exc

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
        members = await self._run(self._delete_room_rows, room_name)
        with storage_guard():
            await self._messages.publish_control("room_deleted", room=room_name)
            messages = await self._messages.delete_room(room_name)
        return members, messages

    @staticmethod
    def _delete_room_rows(name: str) -> int:
        room = Room.by_name(name)
        if room is None:
            raise NotFoundError(f"no room {name!r}")
        return Room.delete_with_memberships(room.id)

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
        users, sessions = await self._run(
            lambda: (list(User.select().order_by(User.name_key)), Session.live_counts())
        )
        return [
            UserInfo(user.name, user.created, user.disabled, sessions.get(user.id, 0))
            for user in users
        ]

    async def create_user(self, name: object, password: object) -> UserInfo:
        """An account, exactly as if the user had registered (a member of ``lobby``)."""
        account = await AuthController(self._run, self._hasher).register(name, password)
        return UserInfo(account.name, account.created, False, 0)

    async def set_password(self, name: object, password: object) -> tuple[UserInfo, int]:
        """Give a user a new password and end all their sessions (SPEC §10).

        Returns the user and how many sessions were revoked; the running processes
        close the user's sockets (1008) on the control event.
        """
        user = await self._user(name)
        secret = validation.password(password)
        password_hash = await self._run(self._hasher.hash, secret)
        revoked = await self._run(self._set_password_rows, user.id, password_hash)
        with storage_guard():
            await self._messages.publish_control("sessions_ended", user_id=user.id)
        return await self._info(user.id), revoked

    @staticmethod
    def _set_password_rows(user_id: int, password_hash: str) -> int:
        with database.atomic():
            User.update(password_hash=password_hash).where(User.id == user_id).execute()
            return Session.revoke_all(user_id)

    async def disable_user(self, name: object) -> tuple[UserInfo, int]:
        """Refuse the user's logins, revoke their sessions and close their sockets.

        Returns the user and how many sessions were revoked. The running
        processes close the user's sockets (1008) on the control event.
        """
        user = await self._user(name)
        revoked = await self._run(self._disable_rows, user.id)
        with storage_guard():
            await self._messages.publish_control(
                "user_disabled", user_id=user.id, user=user.name_key
            )
        return await self._info(user.id), revoked

    @staticmethod
    def _disable_rows(user_id: int) -> int:
        with database.atomic():
            User.update(disabled=True).where(User.id == user_id).execute()
            return Session.revoke_all(user_id)

    async def enable_user(self, name: object) -> UserInfo:
        """Let a disabled user log in again (their old sessions stay revoked)."""
        user = await self._user(name)
        await self._run(lambda: User.update(disabled=False).where(User.id == user.id).execute())
        return await self._info(user.id)

    async def _user(self, name: object) -> User:
        user_name = validation.username(name)
        user = await self._run(User.by_name, user_name)
        if user is None:
            raise NotFoundError(f"no user {user_name!r}")
        return user

    async def _info(self, user_id: int) -> UserInfo:
        def row() -> UserInfo:
            user = User.get_by_id(user_id)
            sessions = Session.live_counts([user_id]).get(user_id, 0)
            return UserInfo(user.name, user.created, user.disabled, sessions)

        return await self._run(row)

    # -- statistics ----------------------------------------------------------

    async def stats(self) -> Stats:
        """Counts of rooms, users and retained messages, and the live connections."""
        names, users = await self._run(
            lambda: ([r.name for r in Room.select(Room.name)], User.select().count())
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
        )
