"""Value objects the controllers hand to the views: plain data, safe across threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Account:
    """A signed-in user as the rest of the application sees it."""

    id: int
    name: str
    created: datetime

    @property
    def key(self) -> str:
        """The case-insensitive identity of the user."""
        return self.name.lower()

    def public(self) -> dict:
        created = self.created.replace(tzinfo=timezone.utc).isoformat()
        return {"name": self.name, "created": created}


@dataclass(frozen=True)
class SessionInfo:
    """A live session: whose it is, the stored hash of its token (never the token) and
    when it ends (``expires``, epoch seconds). ``checked`` is the ``time.monotonic()``
    of the lookup: a session ended after that moment may not be noticed by it."""

    account: Account
    token_hash: str
    expires: float
    checked: float


@dataclass(frozen=True)
class RoomRef:
    """What the hot path needs to know about a room the user may use."""

    id: int
    name: str
    is_direct: bool


@dataclass(frozen=True)
class RoomSummary:
    """A room as listed to one user, with that user's unread count."""

    name: str
    topic: str
    is_direct: bool
    members: int
    member: bool
    unread: int
    last_id: int

    def public(self) -> dict:
        return {
            "name": self.name,
            "topic": self.topic,
            "is_direct": self.is_direct,
            "members": self.members,
            "member": self.member,
            "unread": self.unread,
            "last_id": self.last_id,
        }
