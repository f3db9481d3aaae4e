"""The ``block`` table: who blocked whom (SPEC §6). A block closes the direct
conversation of the two; the blocker's browser hides the other's messages."""

from __future__ import annotations

from datetime import datetime

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.user import User


class Block(BaseModel):
    """``blocker`` blocked ``blocked``; one row per pair, gone with either account."""

    blocker = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    blocked = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="+")
    created = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("blocker", "blocked"), True),)

    @classmethod
    def add(cls, blocker_id: int, blocked_id: int) -> bool:
        """Block; True when it is new (False: it was there already)."""
        query = cls.insert(blocker=blocker_id, blocked=blocked_id).on_conflict_ignore()
        # The row count, not the row id: SQLite keeps the last id after an ignored insert.
        return query.as_rowcount().execute() > 0

    @classmethod
    def remove(cls, blocker_id: int, blocked_id: int) -> bool:
        """Unblock; True when there was a block."""
        query = cls.delete().where((cls.blocker == blocker_id) & (cls.blocked == blocked_id))
        return query.execute() > 0

    @classmethod
    def count_by(cls, blocker_id: int) -> int:
        return cls.select().where(cls.blocker == blocker_id).count()

    @classmethod
    def listing(cls, blocker_id: int) -> list[tuple[str, datetime]]:
        """(name, since) of each user ``blocker_id`` blocked, by name."""
        query = (
            cls.select(User.name, cls.created)
            .join(User, on=(cls.blocked == User.id))
            .where(cls.blocker == blocker_id)
            .order_by(User.name_key)
        )
        return list(query.tuples())

    @classmethod
    def blockers_of(cls, blocked_id: int) -> list[str]:
        """The name keys of the users who blocked ``blocked_id`` (one indexed query)."""
        query = (
            cls.select(User.name_key)
            .join(User, on=(cls.blocker == User.id))
            .where(cls.blocked == blocked_id)
        )
        return [key for (key,) in query.tuples()]

    @classmethod
    def between(cls, user_id: int, other_key: str) -> str | None:
        """Whether ``user_id`` and the user named ``other_key`` (lowercased) block each
        other: ``"blocker"`` (user_id blocked them), ``"blocked"`` (they blocked
        user_id), or None. One query."""
        other = User.select(User.id).where(User.name_key == other_key)
        rows = cls.select(cls.blocker).where(
            ((cls.blocker == user_id) & (cls.blocked.in_(other)))
            | ((cls.blocked == user_id) & (cls.blocker.in_(other)))
        )
        blockers = {row.blocker_id for row in rows}
        if not blockers:
            return None
        # Both ways at once: being blocked is what the user must be told.
        return "blocker" if blockers == {user_id} else "blocked"
