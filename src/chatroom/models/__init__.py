"""Storage: Peewee tables (users, rooms, memberships, sessions) and Redis repositories.

Nothing here imports Tornado; Redis key names are defined in ``keys`` only.
"""

from chatroom.models.audit import AuditEntry
from chatroom.models.auth_throttle import AuthThrottle
from chatroom.models.blocks import Block
from chatroom.models.database import SchemaVersion, database, migrate_schema, open_database
from chatroom.models.events import Event, EventBus
from chatroom.models.invites import Invite, InviteUnusable
from chatroom.models.keys import RedisKeys
from chatroom.models.limits import RoomQuota
from chatroom.models.membership import Membership
from chatroom.models.messages import HistoryPage, MessageRepository, StoredMessage
from chatroom.models.presence import PresenceRepository
from chatroom.models.room import LOBBY, Room
from chatroom.models.session import Session
from chatroom.models.user import User

__all__ = [
    "LOBBY",
    "AuditEntry",
    "AuthThrottle",
    "Block",
    "Event",
    "EventBus",
    "HistoryPage",
    "Invite",
    "InviteUnusable",
    "Membership",
    "MessageRepository",
    "PresenceRepository",
    "RedisKeys",
    "Room",
    "RoomQuota",
    "SchemaVersion",
    "Session",
    "StoredMessage",
    "User",
    "database",
    "migrate_schema",
    "open_database",
]
