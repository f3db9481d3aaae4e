"""AuthController: register, log in with argon2id, authenticate and revoke sessions."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta, timezone

import argon2

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account, SessionInfo
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    ConflictError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.passwords import PASSWORD_HASHER, PasswordPool
from chatroom.models import LOBBY, AuthThrottle, EventBus, Session, User
from chatroom.models.database import utcnow
from chatroom.models.session import token_digest

log = logging.getLogger(__name__)

#: Longer tokens are never issued (ours are 43 characters): refused before any lookup.
MAX_TOKEN_CHARS = 128


def _account(user: User) -> Account:
    return Account(id=user.id, name=user.name, created=user.created, role=user.role)


class AuthController:
    """Accounts and sessions. One login is one session: a random token, stored hashed.

    A session ends when it is revoked (logout, password change, disable) or
    ``session_days`` after its login, however its token is presented. Ending one
    tells every process (a control event on ``events``) to close its sockets.
    """

    def __init__(
        self,
        run: BlockingRunner,
        hasher: PasswordPool | argon2.PasswordHasher = PASSWORD_HASHER,
        throttle: AuthThrottle | None = None,
        session_days: float = 30,
        events: EventBus | None = None,
    ) -> None:
        """``hasher``: the server's ``PasswordPool``; a bare argon2 hasher (the operator
        commands, tests) gets a one-thread pool of its own."""
        self._run = run
        self._passwords = hasher if isinstance(hasher, PasswordPool) else PasswordPool(1, hasher)
        self._throttle = throttle
        self._session_seconds = session_days * 86400
        self._events = events
        # Verifying against this keeps "no such user" as slow as "wrong password".
        self._dummy_hash = self._passwords.hasher.hash("not a real password")

    async def _allow(self, address: str | None, account: str | None) -> None:
        if self._throttle is None or address is None:
            return
        wait = 0.0
        with self._throttle_outage():
            wait = await self._throttle.attempt(address, account)
        if wait:
            raise RateLimitedError("too many attempts; wait before trying again", wait)

    @staticmethod
    @contextlib.contextmanager
    def _throttle_outage() -> Iterator[None]:
        # The throttle lives in Redis. While Redis is down people can still sign in
        # (accounts are in SQL) and see the page say the chat is unavailable; an
        # outage is short, and guessing during it is still slowed by hashing.
        try:
            with storage_guard():
                yield
        except UnavailableError:
            log.warning("login throttle skipped: Redis is unavailable")

    async def register(
        self,
        username: object,
        password: object,
        address: str | None = None,
        *,
        admit: Callable[[], Awaitable[None]] | None = None,
        create: Callable[[str, str, str], User | None] = User.register,
    ) -> Account:
        """Create an account and make it a member of ``lobby``.

        Sign-up control (controllers/signup.py) passes ``admit``, awaited after the
        throttle and before the slow hash (it raises to refuse), and ``create``,
        which makes the row in place of ``User.register`` (an invite's use with it).
        """
        name = validation.username(username)
        secret = validation.password(password)
        await self._allow(address, None)
        if admit is not None:
            await admit()
        password_hash = await self._passwords.hash(secret)
        user = await self._run(create, name, password_hash, LOBBY)
        if user is None:
            raise ConflictError(f"the name {name!r} is taken")
        return _account(user)

    async def login(
        self, username: object, password: object, address: str | None = None
    ) -> tuple[Account, str]:
        """Check the password; return the account and a new session token.

        ``address`` (the client's IP) feeds the guessing throttle; None skips it.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            raise UnauthorizedError("wrong username or password")
        # Only a name that could be an account gets per-account limits: anything else
        # (``carol:127.0.0.1``, 10 kB of text) matches no account and needs none.
        account_key = username.lower() if validation.USERNAME_RE.match(username) else None
        await self._allow(address, account_key)
        user = await self._run(User.by_name, username) if account_key else None
        stored = user.password_hash if user else self._dummy_hash
        if not await self._passwords.verify(stored, password):
            user = None
        if user is None or user.disabled:
            if self._throttle is not None and address is not None and account_key:
                with self._throttle_outage():
                    await self._throttle.failed(address, account_key)
            raise UnauthorizedError("wrong username or password")
        if self._throttle is not None and address is not None:
            with self._throttle_outage():
                await self._throttle.succeeded(address, user.name_key)
        if self._passwords.needs_rehash(stored):
            new_hash = await self._passwords.hash(password)
            await self._run(User.set_password_hash, user.id, new_hash)
        token = secrets.token_urlsafe(32)
        await self._run(Session.record, token, user.id)
        return _account(user), token

    async def lookup_user(self, name: str, address: str | None = None) -> Account | None:
        """The account named ``name``, or None; limited per client address.

        Whether a name exists is what a guesser of accounts wants to know, so
        lookups from one address share a bucket as large as the login bucket.
        """
        if self._throttle is not None and address is not None:
            wait = 0.0
            with self._throttle_outage():
                wait = await self._throttle.lookup(address)
            if wait:
                raise RateLimitedError("too many lookups; wait before trying again", wait)
        if not validation.USERNAME_RE.match(name):
            return None
        user = await self._run(User.by_name, name)
        return _account(user) if user else None

    async def authenticate(self, token: str | None) -> Account | None:
        """The account of a live session token, or None."""
        session = await self.session(token)
        return session.account if session else None

    async def session(self, token: str | None) -> SessionInfo | None:
        """The live session of a token (not revoked, not expired, user enabled), or None."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        checked = time.monotonic()
        created_after = utcnow() - timedelta(seconds=self._session_seconds)
        row = await self._run(Session.live, token, created_after)
        if row is None:
            return None
        started = row.created.replace(tzinfo=timezone.utc).timestamp()
        return SessionInfo(
            _account(row.user), row.token_hash, started + self._session_seconds, checked
        )

    async def logout(self, token: str) -> None:
        """Revoke one session and close its sockets; other logins of the user stay."""
        if await self._run(Session.revoke, token):
            await self._sessions_ended(session=token_digest(token))

    async def logout_all(self, account: Account) -> int:
        """Revoke every session of the user and close their sockets; how many there were."""
        revoked = await self._run(Session.revoke_all, account.id)
        await self._sessions_ended(user_id=account.id)
        return revoked

    async def _sessions_ended(self, **which: object) -> None:
        """Tell every process to close the sockets of the ended session(s) (1008)."""
        if self._events is None:
            return
        try:
            with storage_guard():
                await self._events.publish_control("sessions_ended", **which)
        except UnavailableError:
            # The revocation in SQL stands: no request authenticates with it any more.
            log.warning("sessions ended, but their sockets were not told: Redis is unavailable")
