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
    #: The site role (SPEC §6): ``admin`` or ``user``.
    role = peewee.CharField(max_length=16, default="user")

    @classmethod
    def by_name(cls, name: str) -> User | None:
        return cls.get_or_none(cls.name_key == name.lower())

    @classmethod
    def register(cls, name: str, password_hash: str, room: str) -> User | None:
        """A new account, a member of the public ``room`` (created if missing), in one
        transaction; None when the name is taken."""
        from chatroom.models.membership import Membership
        from chatroom.models.room import Room

        try:
            with cls._meta.database.atomic():
                user = cls.create(name=name, name_key=name.lower(), password_hash=password_hash)
                Membership.create(user=user, room=Room.ensure_public(room), last_read_id=0)
        except peewee.IntegrityError:
            return None
        return user

    @classmethod
    def listing(cls, ids: list[int] | None = None) -> list[User]:
        """Every account (or those of ``ids``), by name."""
        query = cls.select().order_by(cls.name_key)
        return list(query if ids is None else query.where(cls.id.in_(ids)))

    @classmethod
    def names_of(cls, name_keys: list[str]) -> dict[str, str]:
        """The registered names of those of ``name_keys`` (lowercased names) that exist."""
        rows = cls.select(cls.name, cls.name_key).where(cls.name_key.in_(name_keys))
        return {row.name_key: row.name for row in rows}

    @classmethod
    def total(cls) -> int:
        return cls.select().count()

    @classmethod
    def set_password_hash(cls, user_id: int, password_hash: str) -> None:
        """Store a new hash of the same password (a rehash); sessions stay."""
        cls.update(password_hash=password_hash).where(cls.id == user_id).execute()

    @classmethod
    def change_password(cls, user_id: int, password_hash: str) -> int:
        """Store a new password's hash and revoke every session, in one transaction;
        how many sessions were revoked."""
        from chatroom.models.session import Session

        with cls._meta.database.atomic():
            cls.set_password_hash(user_id, password_hash)
            return Session.revoke_all(user_id)

    @classmethod
    def disable(cls, user_id: int) -> int:
        """Refuse the user's logins and revoke every session, in one transaction;
        how many sessions were revoked."""
        from chatroom.models.session import Session

        with cls._meta.database.atomic():
            cls.update(disabled=True).where(cls.id == user_id).execute()
            return Session.revoke_all(user_id)

    @classmethod
    def set_role(cls, user_id: int, role: str) -> None:
        cls.update(role=role).where(cls.id == user_id).execute()

    @classmethod
    def enable(cls, user_id: int) -> None:
        """Let the user log in again (revoked sessions stay revoked)."""
        cls.update(disabled=False).where(cls.id == user_id).execute()
