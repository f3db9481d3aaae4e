"""The application's behaviour as classes (auth, rooms, chat); nothing here imports Tornado."""

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
