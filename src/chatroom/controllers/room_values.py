"""Rooms as the controllers hand them out: plain, frozen data, safe across threads."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RoomRef:
    """What the hot path needs to know about a room the user may use."""

    id: int
    name: str
    is_direct: bool
    #: [issue 13] members only: ``join`` never makes a member of it.
    is_private: bool = False


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
    #: [issue 12] unread messages that mention the caller (SPEC §5.3).
    mentions: int = 0
    #: [issue 13] members only (SPEC §6).
    private: bool = False
    #: [issue 13] the caller's room role: ``owner``, ``moderator``, ``member`` or None.
    role: str | None = None

    def public(self) -> dict:
        return asdict(self)
