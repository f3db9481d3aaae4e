"""The data directory: created private, locked by one server at a time, holds the cookie secret."""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path


class DataDirError(RuntimeError):
    """The data directory cannot be used (locked by another server, not writable)."""


class DataDirectory:
    """A chatroom data directory (SQLite file, embedded Redis files, cookie secret)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def create(self) -> None:
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"cannot create the data directory {self.path}: {exc}") from exc

    def lock(self) -> None:
        """Hold an exclusive lock for as long as this process (and its forks) live.

        A second ``chatroom serve`` on the same directory would run a second Redis
        on the same files; it is refused instead.
        """
        if not self.try_lock():
            raise DataDirError(
                f"another chatroom server is using {self.path}; stop it first "
                "or give this one its own --data-dir"
            )

    def try_lock(self) -> bool:
        """Take the lock if no other process holds it; False when one does (a server runs)."""
        self.create()
        fd = os.open(self.path / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def cookie_secret(self) -> str:
        """The secret that signs cookies: generated once, kept in ``cookie_secret`` (0600)."""
        self.create()
        path = self.path / "cookie_secret"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            secret = path.read_text().strip()
            if len(secret) < 32:
                raise DataDirError(f"{path} is too short; delete it to make a new one") from None
            return secret
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret
