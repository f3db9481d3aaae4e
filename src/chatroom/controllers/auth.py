"""AuthController: register, log in with argon2id, authenticate and revoke sessions."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator

import argon2
import peewee

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    ConflictError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
    storage_guard,
)
from chatroom.controllers.passwords import PASSWORD_HASHER, PasswordPool
from chatroom.models import AuthThrottle, Membership, Room, Session, User, database

log = logging.getLogger(__name__)


def _account(user: User) -> Account:
    return Account(id=user.id, name=user.name, created=user.created)


class AuthController:
    """Accounts and sessions. One login is one session: a random token, stored hashed."""

    def __init__(
        self,
        run: BlockingRunner,
        hasher: PasswordPool | argon2.PasswordHasher = PASSWORD_HASHER,
        throttle: AuthThrottle | None = None,
    ) -> None:
        """``hasher``: the server's ``PasswordPool``; a bare argon2 hasher (the operator
        commands, tests) gets a one-thread pool of its own."""
        self._run = run
        self._passwords = hasher if isinstance(hasher, PasswordPool) else PasswordPool(1, hasher)
        self._throttle = throttle
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
        self, username: object, password: object, address: str | None = None
    ) -> Account:
        """Create an account and make it a member of ``lobby``."""
        name = validation.username(username)
        secret = validation.password(password)
        await self._allow(address, None)
        password_hash = await self._passwords.hash(secret)
        return await self._run(self._create_user, name, password_hash)

    def _create_user(self, name: str, password_hash: str) -> Account:
        try:
            with database.atomic():
                user = User.create(name=name, name_key=name.lower(), password_hash=password_hash)
                lobby = Room.ensure_public("lobby")
                Membership.create(user=user, room=lobby, last_read_id=0)
        except peewee.IntegrityError as exc:
            raise ConflictError(f"the name {name!r} is taken") from exc
        return _account(user)

    async def login(
        self, username: object, password: object, address: str | None = None
    ) -> tuple[Account, str]:
        """Check the password; return the account and a new session token.

        ``address`` (the client's IP) feeds the guessing throttle; None skips it.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            raise UnauthorizedError("wrong username or password")
        account_key = username.lower()[: validation.MAX_USERNAME_CHARS] or None
        await self._allow(address, account_key)
        user = await self._run(User.by_name, username) if username else None
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
            await self._run(self._set_password_hash, user.id, new_hash)
        token = secrets.token_urlsafe(32)
        await self._run(Session.record, token, user.id)
        return _account(user), token

    @staticmethod
    def _set_password_hash(user_id: int, password_hash: str) -> None:
        User.update(password_hash=password_hash).where(User.id == user_id).execute()

    async def authenticate(self, token: str | None) -> Account | None:
        """The account of a live session token, or None."""
        if not token or len(token) > 128:
            return None
        user = await self._run(Session.user_for_token, token)
        return _account(user) if user else None

    async def logout(self, token: str) -> None:
        """Revoke one session; other logins of the same user stay signed in."""
        await self._run(Session.revoke, token)
