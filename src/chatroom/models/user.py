"""The ``user`` table: accounts with a case-insensitively unique name."""

from __future__ import annotations

import peewee

from chatroom.models.database import BaseModel, utcnow


class User(BaseModel):
    """An account. ``name`` is shown as registered; ``name_key`` (lowercased) is unique."""

    name = peewee.CharField(max_length=32)
    name_key = peewee.CharField(max_length=32, unique=True)
    password_hash = peewee.CharField(max_length=255)
    created = peewee.DateTimeField(default=utcnow)
    disabled = peewee.BooleanField(default=False)

    @classmethod
    def by_name(cls, name: str) -> User | None:
        return cls.get_or_none(cls.name_key == name.lower())
