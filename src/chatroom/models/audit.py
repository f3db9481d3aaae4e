"""The ``audit_entry`` table: who did which moderation action to whom, where and when (SPEC §6)."""

from __future__ import annotations

import peewee

from chatroom.models.database import BaseModel, utcnow

#: The actor of an operator's command (``chatroom users promote`` and the like).
OPERATOR = "(operator)"


class AuditEntry(BaseModel):
    """One moderation action. Names, not foreign keys: the log outlives the accounts and
    rooms it mentions, and must keep saying who did what after a room is deleted."""

    created = peewee.DateTimeField(default=utcnow, index=True)
    actor = peewee.CharField(max_length=32)
    action = peewee.CharField(max_length=32)
    target = peewee.CharField(max_length=32, null=True)
    room = peewee.CharField(max_length=80, null=True, index=True)
    detail = peewee.CharField(max_length=200, default="")

    @classmethod
    def record(
        cls,
        actor: str,
        action: str,
        target: str | None = None,
        room: str | None = None,
        detail: str = "",
    ) -> AuditEntry:
        return cls.create(actor=actor, action=action, target=target, room=room, detail=detail)

    @classmethod
    def newest(cls, room: str | None = None, limit: int = 100, before: int | None = None) -> list:
        """Entries newest first: every room's, or one room's; ``before`` an entry id pages."""
        query = cls.select()
        if room is not None:
            query = query.where(cls.room == room)
        if before is not None:
            query = query.where(cls.id < before)
        return list(query.order_by(cls.id.desc()).limit(limit))
