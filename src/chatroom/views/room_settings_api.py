"""``GET /api/rooms/<r>``: one room's settings and what the caller may do in it, for the
browser's room settings panel (issue 13); ``PATCH`` and ``DELETE`` as moderation_api."""

from __future__ import annotations

from chatroom.views.moderation_api import RoomHandler, room_settings


class RoomSettingsHandler(RoomHandler):
    """``GET /api/rooms/<r>``: ``{"room": {"name", "topic", "private", "read_only",
    "role", "level"}}`` for anyone who may see the room."""

    async def get(self, room: str) -> None:
        standing = await self.moderation.standing(self.require_user(), room)
        standing.require_visible()
        self.send_json(
            {"room": {**room_settings(standing), "role": standing.role, "level": standing.level}}
        )
