"""The user directory: usernames that start with what someone typed, for the room
settings panel's "add member" autocomplete (``GET /api/users?prefix=``)."""

from __future__ import annotations

import re

from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import BadRequestError
from chatroom.models import User

#: What a username may hold (SPEC §2); a prefix is 1 to 32 of these.
PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
#: How many names one lookup answers.
LIMIT = 10


class UserDirectory:
    """Finds enabled accounts by the start of their name, case-insensitively."""

    def __init__(self, run: BlockingRunner) -> None:
        self._run = run

    async def names(self, prefix: object) -> list[str]:
        """Up to ``LIMIT`` registered names starting with ``prefix``, in name order."""
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
            raise BadRequestError("prefix must be 1 to 32 letters, digits, _ . or -")
        return await self._run(_names_starting, prefix.lower())


def _names_starting(key: str) -> list[str]:
    # Peewee escapes LIKE's % and _ in startswith; the check below keeps it honest anyway.
    rows = (
        User.select(User.name, User.name_key)
        .where(User.name_key.startswith(key), User.disabled == False)  # noqa: E712
        .order_by(User.name_key)
        .limit(LIMIT)
    )
    return [row.name for row in rows if row.name_key.startswith(key)]
