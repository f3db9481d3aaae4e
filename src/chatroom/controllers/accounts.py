"""Who is signed in: the account and session value objects the controllers hand to the views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True, slots=True)  # one per open socket: no instance dict
class Account:
    """A signed-in user as the rest of the application sees it."""

    id: int
    name: str
    created: datetime
    #: The site role (SPEC §6): ``admin`` or ``user``, as read at sign-in.
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def key(self) -> str:
        """The case-insensitive identity of the user."""
        return self.name.lower()

    def public(self) -> dict:
        created = self.created.replace(tzinfo=timezone.utc).isoformat()
        return {"name": self.name, "created": created}

    def me(self) -> dict:
        """``GET /api/me``'s user: the public form and the site role."""
        return {**self.public(), "role": self.role}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: whose it is, the stored hash of its token (never the token) and
    when it ends (``expires``, epoch seconds). ``checked`` is the ``time.monotonic()``
    of the lookup: a session ended after that moment may not be noticed by it."""

    account: Account
    token_hash: str
    expires: float
    checked: float
