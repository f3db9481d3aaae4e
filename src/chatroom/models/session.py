"""The ``session`` table: one row per login, revocable; only a hash of the token is stored."""

from __future__ import annotations

import hashlib
from datetime import datetime

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.user import User


def token_digest(token: str) -> str:
    """The stored form of a session token: its SHA-256, so the database never holds it."""
    return hashlib.sha256(token.encode()).hexdigest()


class Session(BaseModel):
    """A login: its token authenticates the cookie and the Bearer header alike."""

    token_hash = peewee.CharField(max_length=64, unique=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="sessions")
    created = peewee.DateTimeField(default=utcnow)
    revoked = peewee.DateTimeField(null=True)

    @classmethod
    def record(cls, token: str, user_id: int) -> Session:
        return cls.create(token_hash=token_digest(token), user=user_id)

    @classmethod
    def live(cls, token: str, created_after: datetime | None = None) -> Session | None:
        """The live session of ``token`` with its user, or None (unknown, revoked, older
        than ``created_after``, or its user disabled)."""
        live = (cls.token_hash == token_digest(token)) & cls.revoked.is_null()
        if created_after is not None:
            live &= cls.created > created_after
        row = cls.select(cls, User).join(User).where(live).first()
        if row is None or row.user.disabled:
            return None
        return row

    @classmethod
    def user_for_token(cls, token: str) -> User | None:
        """The user of a live session, or None (unknown, revoked or disabled user)."""
        row = cls.live(token)
        return row.user if row is not None else None

    @classmethod
    def revoke(cls, token: str) -> bool:
        query = cls.update(revoked=utcnow()).where(
            (cls.token_hash == token_digest(token)) & cls.revoked.is_null()
        )
        return query.execute() > 0

    @classmethod
    def revoke_all(cls, user_id: int) -> int:
        """Revoke every live session of a user; how many there were."""
        query = cls.update(revoked=utcnow()).where((cls.user == user_id) & cls.revoked.is_null())
        return query.execute()

    @classmethod
    def live_counts(cls, user_ids: list[int] | None = None) -> dict[int, int]:
        """The number of live (not revoked) sessions per user id (of ``user_ids``, or all)."""
        live = cls.revoked.is_null()
        if user_ids is not None:
            live &= cls.user.in_(user_ids)
        query = cls.select(cls.user, peewee.fn.COUNT(cls.id).alias("n")).where(live)
        return {row.user_id: row.n for row in query.group_by(cls.user)}
