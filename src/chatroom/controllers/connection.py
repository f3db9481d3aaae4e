"""The small protocol through which controllers reach a live client connection, and
what the chat keeps about each one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chatroom.controllers.accounts import Account
from chatroom.controllers.limits import SocketLimits
from chatroom.controllers.room_values import RoomRef


class Connection(Protocol):
    """A client socket as the controllers see it (the WebSocket handler implements it)."""

    conn_id: str
    account: Account

    def deliver(self, frame: bytes) -> None:
        """Queue one encoded frame for this client; never blocks."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection with a WebSocket close code."""

    def abort(self) -> None:
        """Drop the connection without waiting for the client's answer to ``close``."""


@dataclass(slots=True)
class ConnectionState:
    """What the chat tracks per connection: its joined rooms, its own limits, the
    newest message id it has of each room it ever joined (a room's full history goes
    to a socket once; later joins get what is new)."""

    limits: SocketLimits
    rooms: dict[str, RoomRef] = field(default_factory=dict)
    has_up_to: dict[str, int] = field(default_factory=dict)
