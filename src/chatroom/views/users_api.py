"""``GET /api/users?prefix=``: usernames for the room settings panel's autocomplete."""

from __future__ import annotations

from chatroom.views.moderation_api import ModerationHandler


class UsersApiHandler(ModerationHandler):
    """Up to 10 names of enabled accounts that start with ``prefix``, any case."""

    PARAMETERS = frozenset({"prefix"})

    async def get(self) -> None:
        self.require_user()
        names = await self.controllers.directory.names(self.query("prefix"))
        self.send_json({"users": names})
