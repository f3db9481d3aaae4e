"""The data directory: kept private, locked by one server at a time, holds the cookie secret."""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from pathlib import Path

#: The umask of every chatroom command and of the embedded Redis: what they create
#: (SQLite files, the AOF and its rewrites, logs) is readable by its owner only.
PRIVATE_UMASK = 0o077
#: The data directory and the directories in it; the files in it.
PRIVATE_DIR_MODE, PRIVATE_FILE_MODE = 0o700, 0o600


class DataDirError(RuntimeError):
    """The data directory cannot be used (locked by another server, not writable)."""


def _raise(error: OSError) -> None:
    raise error


class DataDirectory:
    """A chatroom data directory (SQLite file, embedded Redis files, cookie secret)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def create(self) -> None:
        """Create the directory if needed and make it private, also when it existed.

        It holds password hashes (SQLite) and every message (the AOF), so an
        existing directory with looser modes (systemd's ``StateDirectory=`` makes
        it 0755) is tightened: directories 0700, regular files 0600.
        """
        try:
            self.path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"cannot create the data directory {self.path}: {exc}") from exc
        try:
            self._make_private()
        except OSError as exc:
            raise DataDirError(f"cannot make {self.path} and its files private: {exc}") from exc

    def _make_private(self) -> None:
        # Top-down: each directory is closed to others before its entries are
        # changed. Symbolic links are neither followed nor changed (os.walk does
        # not descend into them, and lstat tells them apart).
        for directory, _, files in os.walk(self.path, onerror=_raise):
            os.chmod(directory, PRIVATE_DIR_MODE)
            for name in files:
                path = os.path.join(directory, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode) and stat.S_IMODE(mode) != PRIVATE_FILE_MODE:
                    os.chmod(path, PRIVATE_FILE_MODE)

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
        fd = os.open(self.path / "serve.lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        except FileExistsError:
            secret = path.read_text().strip()
            if len(secret) < 32:
                raise DataDirError(f"{path} is too short; delete it to make a new one") from None
            return secret
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret
