"""Uploads in progress: streaming the body to a temp file, then storing the file.

An ``Upload`` takes the request body as it comes (raw, or the ``file`` part of a
multipart body), counted against ``--max-upload-bytes`` and hashed; then
``store_upload`` sniffs its type, checks and cleans images, records the ``file``
row and stores the bytes under their sha256. ``FilesController.begin`` and
``finish`` (controllers/files.py) drive these. Nothing here imports Tornado.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from chatroom.controllers.accounts import Account
from chatroom.controllers.errors import BadRequestError, TooLargeError, UnavailableError
from chatroom.controllers.multipart import MultipartFileReader
from chatroom.controllers.room_values import RoomRef
from chatroom.models.file_storage import FileStorage, StorageError
from chatroom.models.files import INLINE_IMAGE_TYPES, SNIFF_BYTES, THUMB_SUFFIX, File, sniff_type
from chatroom.models.images import ImageRejected, process_image


@dataclass(frozen=True)
class UploadLimits:
    """The upload settings: ``max_upload_bytes`` and ``upload_idle_seconds``."""

    max_bytes: int = 10 * 1024 * 1024
    idle_seconds: float = 30.0


@dataclass
class Upload:
    """One upload in progress: its bytes go to a temp file, counted and hashed.

    ``write`` takes the request body as it arrives (raw, or a multipart body whose
    ``file`` part it extracts) and raises ``TooLargeError`` past the limit; the
    caller then calls ``discard``.
    """

    account: Account
    room: RoomRef
    name: str | None
    path: Path
    max_bytes: int
    multipart: MultipartFileReader | None = None
    size: int = 0
    last_data: float = field(default_factory=time.monotonic)
    _file: BinaryIO | None = None
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def write(self, chunk: bytes) -> None:
        self.last_data = time.monotonic()
        data = self.multipart.feed(chunk) if self.multipart is not None else chunk
        if not data:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            raise TooLargeError(f"the file is larger than {self.max_bytes} bytes")
        if self._file is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed by finish/discard
        self._file.write(data)
        self._hash.update(data)

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Remove the temp file: nothing of a failed upload is left on disk."""
        self.close_file()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def temp_path(storage: FileStorage) -> Path:
    """A new empty temp file in the storage's staging directory, for one upload."""
    fd, name = tempfile.mkstemp(dir=storage.staging_dir(), prefix="upload-")
    os.close(fd)
    return Path(name)


def store_upload(storage: FileStorage, upload: Upload, name: str) -> dict:
    """Sniff, check and clean (images) the finished upload, record its row and store
    its bytes under their sha256; its file object. Blocks: run it in a thread."""
    with open(upload.path, "rb") as f:
        kind = sniff_type(f.read(SNIFF_BYTES))
    source, sha, size = upload.path, upload.sha256, upload.size
    width = height = None
    made: list[Path] = []
    try:
        thumbnail = None
        if kind in INLINE_IMAGE_TYPES:
            try:
                info = process_image(upload.path, kind, storage.staging_dir())
            except ImageRejected as exc:
                raise BadRequestError(str(exc)) from None
            made += [p for p in (info.cleaned, info.thumbnail) if p is not None]
            width, height, thumbnail = info.width, info.height, info.thumbnail
            if info.cleaned is not None:  # what is stored and served has no metadata
                source, sha, size = info.cleaned, _sha256_of(info.cleaned), _size(info.cleaned)
        thumb_key = sha + THUMB_SUFFIX if thumbnail is not None else None
        # The row first, then the bytes: ``release`` deletes rows first, then
        # objects no row uses, so an object a new row needs is not taken away.
        row = File.create(
            uid=secrets.token_urlsafe(16),
            owner_id=upload.account.id,
            room_id=upload.room.id,
            name=name,
            size=size,
            type=kind,
            sha256=sha,
            width=width,
            height=height,
            thumb_key=thumb_key,
        )
        try:
            storage.put(sha, source)
            if thumbnail is not None and thumb_key is not None:
                storage.put(thumb_key, thumbnail)
        except StorageError as exc:
            row.delete_instance()
            raise UnavailableError(str(exc)) from None
        return row.public()
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    return path.stat().st_size
