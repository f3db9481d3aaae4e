"""Every Redis key and channel name chatroom uses, in one place.

All keys of one room share the hash tag ``{room}`` so that a room's keys live in
one Redis Cluster slot and the send script stays single-slot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """Builds key names under a configurable prefix (``chatroom`` by default)."""

    prefix: str = "chatroom"

    def seq(self, room: str) -> str:
        """The room's message counter: the id of its newest message."""
        return f"{self.prefix}:{{{room}}}:seq"

    def log(self, room: str) -> str:
        """The room's retained messages, oldest first, each stored as its ``message`` frame."""
        return f"{self.prefix}:{{{room}}}:log"

    def client_id(self, room: str, user_key: str, client_id: str) -> str:
        """Remembers which id a user's ``client_id`` was stored under (retry dedupe)."""
        return f"{self.prefix}:{{{room}}}:cid:{user_key}:{client_id}"

    def send_rate(self, room: str, user_key: str) -> str:
        """A user's send token bucket in this room (in the room's slot, for the send script)."""
        return f"{self.prefix}:{{{room}}}:rate:{user_key}"

    def online(self, room: str) -> str:
        """Sorted set of the room's live connections (``user\\nconn``), scored by expiry."""
        return f"{self.prefix}:{{{room}}}:online"

    def presence_rooms(self) -> str:
        """Set of rooms that have ever had presence entries (what the sweeper visits)."""
        return f"{self.prefix}:presence-rooms"

    def events(self) -> str:
        """The pub/sub channel every process listens to."""
        return f"{self.prefix}:events"
