"""ControlEvents: what a process does when an operator's (or another process's) change
arrives on the event bus — a room deleted, a user disabled, sessions ended, a member
removed from or added to a room, access checks invalidated, a block between two users.
Control events are applied here and never relayed to sockets as they are (the sockets
concerned get frames of their own: ``removed``, ``added``).

Every action may carry an ``access_version``; ``access_changed`` carries only that.
Any of them drops the access checks made before that version (``RoomAccessCache``).
[issue 13] Moderation's ``member_removed`` and ``room_deleted`` carry ``version``
instead: their change is applied by name, and the version only advances.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from chatroom.controllers import frames
from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.accounts import SessionInfo
from chatroom.controllers.connection import Connection, ConnectionState
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.presence_local import LocalPresence
from chatroom.controllers.session_watch import SessionWatch

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")

#: (user id, room id)
AccessPair = tuple[int, int]
#: The site roles (SPEC §6).
SITE_ROLES = ("admin", "user")
#: How long a role change is remembered for sockets admitted after it whose session was
#: read before it (a WebSocket handshake takes far less).
ROLE_MEMORY_SECONDS = 300.0


class ControlEvents:
    """Applies control events to this process's caches, subscriptions and sockets."""

    def __init__(
        self,
        access: RoomAccessCache,
        sessions: SessionWatch,
        connections: dict[Connection, ConnectionState],
        hub: FanoutHub,
        on_left: Callable[[Connection, str], None] | None = None,
        lost: Callable[[list[AccessPair]], Awaitable[dict[AccessPair, str]]] | None = None,
        presence: LocalPresence | None = None,
    ) -> None:
        self._access = access
        self._sessions = sessions
        self._connections = connections
        self._hub = hub
        #: Called for each subscription a removal ends (the presence clean-up).
        self._on_left = on_left
        #: Which (user id, room id) pairs lost access, and why (SQL: ``access_lost``).
        self._lost = lost
        #: [issue 13] Called with the two users of a block made or lifted.
        self.on_blocks: Callable[[list[int]], None] | None = None
        #: [issue 13] user id -> (site role, ``time.monotonic()`` of the change), recent ones.
        self._roles: dict[int, tuple[str, float]] = {}
        #: This process's presence entries (a deleted room's are taken back).
        self._presence = presence

    def apply(self, control: dict) -> None:
        """Apply one control event's payload; an unknown one is logged and ignored."""
        action, version = control.get("action"), control.get("access_version")
        if _is_int(version):
            self._access.invalidate_before(version)
        room, user_id = control.get("room"), control.get("user_id")
        if action == "member_removed" and isinstance(room, str) and _is_int(user_id):
            self.member_removed(room, user_id, str(control.get("reason", "kicked"))[:16])
        elif action == "member_added" and isinstance(room, str) and _is_int(user_id):
            self.member_added(room, user_id, control)
        elif action == "room_deleted" and isinstance(room, str):
            self.room_deleted(room)
        elif action == "user_disabled" and isinstance(control.get("user_id"), int):
            self.user_disabled(control["user_id"])
        elif action == "sessions_ended" and isinstance(control.get("session"), str):
            self._sessions.end(("session", control["session"]))
        elif action == "sessions_ended" and isinstance(control.get("user_id"), int):
            self._sessions.end(("user", control["user_id"]))
        elif action == "role_changed" and _is_int(user_id):
            self.role_changed(user_id, control.get("role"))
        elif action == "blocks_changed" and isinstance(control.get("room"), str):
            self.blocks_changed(control["room"], control.get("user_ids"))
        elif action != "access_changed":
            log.warning("ignored an unknown control event: %.200r", control)
        moved = control.get("version")  # [issue 13] after the change it counts
        if _is_int(moved):
            self._access.advance(moved)

    def member_removed(self, room: str, user_id: int, reason: str) -> None:
        """[issue 13] ``user_id`` lost ``room``: forget their check of it; each of their
        sockets here gets ``removed`` and nothing more from the room."""
        self._access.forget(user_id, room)
        frame = frames.removed(room, reason)
        for conn, state in list(self._connections.items()):
            if conn.account.id != user_id:
                continue
            if self._hub.unsubscribe(room, conn) is not None and self._on_left is not None:
                self._on_left(conn, room)
            state.rooms.pop(room, None)
            state.has_up_to.pop(room, None)
            state.tell(conn, frame)

    def member_added(self, room: str, user_id: int, control: dict) -> None:
        """[issue 13] ``user_id`` was made a member of ``room``: each of their sockets
        here gets ``added`` (the browser lists the room and follows it at once)."""
        role, last_id = control.get("role"), control.get("last_id")
        frame = frames.added(
            room,
            control.get("private") is True,
            role if role in ("owner", "moderator", "member") else "member",
            last_id if _is_int(last_id) and last_id >= 0 else 0,
        )
        for conn, state in list(self._connections.items()):
            if conn.account.id == user_id:
                state.tell(conn, frame)

    def room_deleted(self, room: str) -> None:
        """Forget the room's access checks; its sockets get ``removed`` (reason
        ``deleted``) and leave it."""
        self._access.forget_room(room)
        frame = frames.removed(room, "deleted")
        users = []
        for conn in self._hub.drop_room(room):
            state = self._connections.get(conn)
            if state is not None:
                state.rooms.pop(room, None)
                state.has_up_to.pop(room, None)  # a new room of that name starts afresh
            conn.deliver(frame)
            users.append(conn.account.name)
        # Their presence entries went with the room's keys; taking them back here
        # (in the background) also undoes an entry written while the room was deleted.
        if self._presence is not None:
            self._presence.forget(room, users)

    async def catch_up(self, version: int) -> None:
        """[issue 13] The subscription is back after being down, and ``version`` is the
        shared access version in Redis: the checks older than it go, and when it moved
        (a change was missed) the subscriptions they covered are checked again."""
        before = self._access.version
        self._access.invalidate_before(version)
        if self._access.version == before:
            return
        try:
            await self.recheck()
        except Exception:  # the database is down too: sends and joins check again
            log.warning("could not check subscriptions again after an outage", exc_info=True)

    async def recheck(self) -> int:
        """[issue 13] The subscription was down and older access checks were dropped: a
        kick, ban or room delete may have been missed. Check again, in SQL, each
        subscription here whose check is gone, and remove (``removed``, with the reason
        SQL gives) those no longer allowed. How many (user, room) pairs were removed."""
        if self._lost is None:
            return 0
        names: dict[AccessPair, str] = {}
        for conn, state in self._connections.items():
            for name, ref in state.rooms.items():
                if (conn.account.id, name) not in self._access:
                    names[(conn.account.id, ref.id)] = name
        if not names:
            return 0
        lost = await self._lost(list(names))
        for (user_id, room_id), reason in lost.items():
            name = names[(user_id, room_id)]
            if (user_id, name) not in self._access:  # not checked again since: still lost
                self.member_removed(name, user_id, reason)
        if lost:
            log.info("removed %d subscriptions whose removal was missed", len(lost))
        return len(lost)

    def role_changed(self, user_id: int, role: object) -> None:
        """[issue 13] ``user_id``'s site role is ``role`` now: their sockets here act with
        it from now on (a site admin may post in read-only rooms). Remembered a while for
        sockets whose session was read before it and that are admitted after it."""
        if role not in SITE_ROLES:
            return
        now = time.monotonic()
        self._roles = {u: r for u, r in self._roles.items() if r[1] > now - ROLE_MEMORY_SECONDS}
        self._roles[user_id] = (role, now)
        for conn in list(self._connections):
            if conn.account.id == user_id and conn.account.role != role:
                conn.account = dataclasses.replace(conn.account, role=role)

    def admitted(self, conn: Connection, session: SessionInfo | None) -> None:
        """A socket was admitted: a role change applied since its session was read
        (which it may not show) is applied to it now."""
        recent = self._roles.get(conn.account.id)
        if session is None or recent is None or recent[1] < session.checked:
            return
        if conn.account.role != recent[0]:
            conn.account = dataclasses.replace(conn.account, role=recent[0])

    def blocks_changed(self, room: str, user_ids: object) -> None:
        """A block between two users made or lifted (SPEC §6): forget their checks of
        their direct room, so that their next use of it is checked again (and refused),
        and who blocked them (``on_blocks``: mention counts)."""
        if not isinstance(user_ids, list):
            return
        users = [user_id for user_id in user_ids if _is_int(user_id)]
        for user_id in users:
            self._access.forget(user_id, room)
        if self.on_blocks is not None:
            self.on_blocks(users)  # [issue 13] whose mentions count for whom

    def user_disabled(self, user_id: int) -> None:
        """Forget the user's access checks and close their sockets (1008)."""
        self._access.forget_user(user_id)
        self._sessions.end(("user", user_id), "account disabled")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
