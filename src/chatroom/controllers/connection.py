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
    #: [issue 13] ``hello`` went out; until then a control event's frame (``added``,
    #: ``removed``) waits in ``early``, so that ``hello`` is always the first frame.
    greeted: bool = False
    early: list[bytes] | None = None

    def tell(self, conn: Connection, frame: bytes) -> None:
        """Deliver ``frame`` to ``conn`` now, or right after its ``hello``."""
        if self.greeted:
            conn.deliver(frame)
        elif self.early is None:
            self.early = [frame]
        else:
            self.early.append(frame)

    def greet(self, conn: Connection) -> None:
        """``hello`` went out to ``conn``: what waited for it follows."""
        self.greeted = True
        early, self.early = self.early, None
        for frame in early or ():
            conn.deliver(frame)
