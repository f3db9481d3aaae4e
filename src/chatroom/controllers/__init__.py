"""The application's behaviour as classes (auth, rooms, chat); nothing here imports Tornado.

The names below are imported on first use (PEP 562), not with the package: a
process that needs one controller (``chatroom archive``'s archiver) imports that
module alone, not argon2 and the chat machinery with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatroom.controllers.accounts import Account
    from chatroom.controllers.auth import AuthController
    from chatroom.controllers.blocking import BlockingRunner
    from chatroom.controllers.chat import ChatController
    from chatroom.controllers.connection import Connection
    from chatroom.controllers.errors import ChatError
    from chatroom.controllers.health import HealthController
    from chatroom.controllers.limits import SendLimits
    from chatroom.controllers.room_values import RoomRef, RoomSummary
    from chatroom.controllers.rooms import RoomController

#: Each name the package offers, and the module that defines it.
_HOMES = {
    "Account": "accounts",
    "AuthController": "auth",
    "BlockingRunner": "blocking",
    "ChatController": "chat",
    "ChatError": "errors",
    "Connection": "connection",
    "HealthController": "health",
    "RoomController": "rooms",
    "RoomRef": "room_values",
    "RoomSummary": "room_values",
    "SendLimits": "limits",
}

__all__ = [
    "Account",
    "AuthController",
    "BlockingRunner",
    "ChatController",
    "ChatError",
    "Connection",
    "HealthController",
    "RoomController",
    "RoomRef",
    "RoomSummary",
    "SendLimits",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:  # a submodule not imported yet: the import system loads it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
