"""ControlEvents: what a process does when an operator's (or another process's) change
arrives on the event bus — a room deleted, a user disabled, sessions ended, access
checks invalidated. Control events are applied here and never relayed to sockets.

Every action may carry an ``access_version``; ``access_changed`` carries only that.
Any of them drops the access checks made before that version (``RoomAccessCache``).
"""

from __future__ import annotations

import logging

from chatroom.controllers import frames
from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.connection import Connection, ConnectionState
from chatroom.controllers.errors import NotFoundError
from chatroom.controllers.fanout import FanoutHub
from chatroom.controllers.presence_local import LocalPresence
from chatroom.controllers.session_watch import SessionWatch

# The live chat's log lines keep the logger name they had when chat.py held them all,
# so that logging set up for it (and its tests) still sees them.
log = logging.getLogger("chatroom.controllers.chat")


class ControlEvents:
    """Applies control events to this process's caches, subscriptions and sockets."""

    def __init__(
        self,
        access: RoomAccessCache,
        sessions: SessionWatch,
        connections: dict[Connection, ConnectionState],
        hub: FanoutHub,
        presence: LocalPresence,
    ) -> None:
        self._access = access
        self._sessions = sessions
        self._connections = connections
        self._hub = hub
        self._presence = presence

    def apply(self, control: dict) -> None:
        """Apply one control event's payload; an unknown one is logged and ignored."""
        action, version = control.get("action"), control.get("access_version")
        if isinstance(version, int) and not isinstance(version, bool):
            self._access.invalidate_before(version)
        if action == "room_deleted" and isinstance(control.get("room"), str):
            self.room_deleted(control["room"])
        elif action == "user_disabled" and isinstance(control.get("user_id"), int):
            self.user_disabled(control["user_id"])
        elif action == "sessions_ended" and isinstance(control.get("session"), str):
            self._sessions.end(("session", control["session"]))
        elif action == "sessions_ended" and isinstance(control.get("user_id"), int):
            self._sessions.end(("user", control["user_id"]))
        elif action != "access_changed":
            log.warning("ignored an unknown control event: %.200r", control)

    def room_deleted(self, room: str) -> None:
        """Forget the room's access checks; its sockets get ``not_found`` and leave it."""
        self._access.forget_room(room)
        frame = frames.error(NotFoundError(f"the room {room!r} was deleted"), room)
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
        self._presence.forget(room, users)

    def user_disabled(self, user_id: int) -> None:
        """Forget the user's access checks and close their sockets (1008)."""
        self._access.forget_user(user_id)
        self._sessions.end(("user", user_id), "account disabled")
