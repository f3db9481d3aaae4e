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

    @property
    def key(self) -> str:
        """The case-insensitive identity of the user."""
        return self.name.lower()

    def public(self) -> dict:
        created = self.created.replace(tzinfo=timezone.utc).isoformat()
        return {"name": self.name, "created": created}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: whose it is, the stored hash of its token (never the token) and
    when it ends (``expires``, epoch seconds). ``checked`` is the ``time.monotonic()``
    of the lookup: a session ended after that moment may not be noticed by it."""

    account: Account
    token_hash: str
    expires: float
    checked: float
