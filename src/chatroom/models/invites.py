"""The ``invite`` table: sign-up invite codes with a number of uses and an expiry (SPEC §6).

Only a digest of each code is stored, as for session tokens: someone who reads
the database cannot register with it. Using a code and creating the account are
one transaction (``register_user``): of two registrations racing for a code's
last use, exactly one gets an account.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.user import User

#: How many characters of a code the lists show, to tell codes apart.
PREFIX_CHARS = 4
#: An invite's uses: 1 by default, at most this many.
MAX_INVITE_USES = 1000
#: How long an invite lasts: a week by default, at most a year.
DEFAULT_INVITE_SECONDS = 7 * 86400
MAX_INVITE_SECONDS = 365 * 86400


def code_digest(code: str) -> str:
    """The stored form of an invite code: its SHA-256."""
    return hashlib.sha256(code.encode()).hexdigest()


class InviteUnusable(Exception):
    """The code is unknown, used up, expired or revoked (which one is not said)."""


class Invite(BaseModel):
    """An invite code: ``uses`` registrations allowed, ``used`` made, until ``expires``."""

    code_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=PREFIX_CHARS)
    created = peewee.DateTimeField(default=utcnow)
    #: Who made it: a site admin's name, or ``(operator)`` (chatroom invites create).
    created_by = peewee.CharField(max_length=32)
    expires = peewee.DateTimeField()
    uses = peewee.IntegerField()
    used = peewee.IntegerField(default=0)
    revoked = peewee.DateTimeField(null=True)

    @classmethod
    def issue(cls, code: str, created_by: str, uses: int, expires: datetime) -> Invite:
        return cls.create(
            code_hash=code_digest(code),
            prefix=code[:PREFIX_CHARS],
            created_by=created_by,
            uses=uses,
            expires=expires,
        )

    @classmethod
    def _usable(cls, now: datetime) -> peewee.Expression:
        return (cls.used < cls.uses) & cls.revoked.is_null() & (cls.expires > now)

    @classmethod
    def usable(cls, code: str, now: datetime | None = None) -> Invite | None:
        """The invite of ``code`` if it can still be used (a check before the slow hash;
        ``register_user`` decides)."""
        now = now or utcnow()
        return cls.get_or_none((cls.code_hash == code_digest(code)) & cls._usable(now))

    @classmethod
    def register_user(cls, code: str, name: str, password_hash: str, room: str) -> User | None:
        """Use one of the code's uses and create the account, in one transaction.

        ``InviteUnusable`` when the code has no use left (nothing changes); None
        when the name is taken (the use is given back: the transaction is undone).
        """
        database = cls._meta.database
        with database.atomic() as transaction:
            # One conditional UPDATE: the database serialises concurrent ones on
            # the row, so a code's last use is taken once.
            taken = (
                cls.update(used=cls.used + 1)
                .where((cls.code_hash == code_digest(code)) & cls._usable(utcnow()))
                .execute()
            )
            if not taken:
                raise InviteUnusable(code[:PREFIX_CHARS])
            user = User.register(name, password_hash, room)  # a savepoint inside
            if user is None:
                transaction.rollback()
            return user

    @classmethod
    def listing(cls, limit: int = 500) -> list[Invite]:
        """The newest ``limit`` invites, newest first (used up and revoked ones too)."""
        return list(cls.select().order_by(cls.id.desc()).limit(limit))

    @classmethod
    def revoke(cls, invite_id: int) -> Invite | None:
        """Revoke an invite (its uses left are refused from now on); the invite, or
        None when there is none with that id. Revoking twice keeps the first time."""
        cls.update(revoked=utcnow()).where((cls.id == invite_id) & cls.revoked.is_null()).execute()
        return cls.get_or_none(cls.id == invite_id)

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``used_up``, ``expired`` or ``revoked`` (the first that applies
        of revoked, used up, expired)."""
        if self.revoked is not None:
            return "revoked"
        if self.used >= self.uses:
            return "used_up"
        if self.expires <= (now or utcnow()):
            return "expired"
        return "active"
