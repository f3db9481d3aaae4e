"""FilesController: uploads, files in messages, serving them, releasing and collecting them.

An upload streams into a temp file (``Upload``, controllers/uploads.py): ``begin``
checks the caller may upload, ``finish`` has ``store_upload`` sniff its type,
check and clean images, store it under its sha256 and record a ``file`` row.
``send`` with ``files`` claims the rows in SQL before its one Redis round trip
and attaches them to the stored message after it. Nothing here imports Tornado.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from chatroom.controllers.accounts import Account
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    storage_guard,
)
from chatroom.controllers.multipart import MultipartFileReader, boundary_of
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.rooms import RoomController
from chatroom.controllers.uploads import (
    Upload,
    UploadLimits,
    store_upload,
    temp_path,
)
from chatroom.models import Membership, Room, database
from chatroom.models.database import utcnow
from chatroom.models.file_storage import (
    FileStorage,
    check_key,
    remove_stale_staging,
)
from chatroom.models.files import (
    INLINE_IMAGE_TYPES,
    File,
    clean_name,
)
from chatroom.models.limits import UploadQuota

#: The most files one message may carry (SPEC §9).
MAX_FILES_PER_MESSAGE = 10
#: File ids are this many URL-safe characters (``secrets.token_urlsafe(16)``).
FILE_ID_CHARS = 22
#: ``chatroom files gc`` leaves files alone that are younger than this (not yet sent).
DEFAULT_GC_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ServedFile:
    """What a ``GET`` of a file needs: the storage key, size, type, name, ETag, and
    whether it may be shown inline (PNG, JPEG, GIF and WebP images only)."""

    key: str
    size: int
    type: str
    name: str
    etag: str
    inline: bool


@dataclass(frozen=True)
class GcReport:
    """What ``chatroom files gc`` removed: file rows, stored objects, stale temp files."""

    files: int
    objects: int
    temp_files: int

    def public(self) -> dict:
        return {"files": self.files, "objects": self.objects, "temp_files": self.temp_files}


class FilesController:
    """Files in rooms (SPEC §9): upload, attach to messages, serve, release, collect."""

    def __init__(
        self,
        run: BlockingRunner,
        rooms: RoomController | None,
        storage: FileStorage,
        quota: UploadQuota | None = None,
        limits: UploadLimits | None = None,
        work: BlockingRunner | None = None,
    ) -> None:
        self._run = run
        # None for the operator's commands, which serve no user.
        self._rooms: RoomController = rooms  # type: ignore[assignment]
        self.storage = storage
        self._quota = quota
        self.limits = limits or UploadLimits()
        # Image decoding and storage I/O take their own threads: a slow upload never
        # holds up the SQL of logins and joins.
        self._work = work or run

    def shutdown(self) -> None:
        """Stop the file threads (when they are not the shared SQL ones)."""
        if self._work is not self._run:
            self._work.shutdown()

    # -- upload ------------------------------------------------------------------

    async def begin(
        self, account: Account, room: object, name: str | None, content_type: str
    ) -> Upload:
        """Check the caller may upload to ``room`` now; an ``Upload`` to stream into.

        The body is not read before this returns, so a refusal costs no upload.
        ``content_type`` decides raw (``name`` given in the query) or multipart.
        """
        boundary = boundary_of(content_type)
        if boundary is None and (name is None or not clean_name(name)):
            raise BadRequestError("name the file: POST the raw body with ?name=<file name>")
        ref = await self._rooms.open(account, room)
        is_member = await self._run(Membership.of, account.id, ref.id)
        if is_member is None:
            raise ForbiddenError("only members may upload to a room: join it first")
        if self._quota is not None:
            with storage_guard():
                wait = await self._quota.take(account.id)
            if wait:
                raise RateLimitedError("too many uploads; wait before uploading again", wait)
        path = await self._work(temp_path, self.storage)
        multipart = MultipartFileReader(boundary) if boundary is not None else None
        return Upload(account, ref, name, path, self.limits.max_bytes, multipart)

    async def finish(self, upload: Upload) -> dict:
        """The body is all in: check, store and record the file; its file object.

        The temp file is removed whatever happens.
        """
        upload.close_file()
        try:
            if upload.multipart is not None:
                upload.multipart.close()
                upload.name = upload.multipart.filename
            name = clean_name(upload.name or "")
            if not name:
                raise BadRequestError("the file needs a name")
            if upload.size == 0:
                raise BadRequestError("the file is empty")
            return await self._work(store_upload, self.storage, upload, name)
        finally:
            upload.discard()

    # -- messages with files -------------------------------------------------------

    async def claim(
        self, account: Account, ref: RoomRef, files: object, client_id: str | None
    ) -> tuple[list[str], list[dict], str]:
        """Check ``files`` of a ``send`` and reserve them for it (SQL, before Redis).

        Each id must be a file the sender uploaded to this room and not yet sent
        in another message. A retried send (the same ``client_id``) finds its own
        reservation. Returns the ids, their file objects (for the message) and the
        claim to ``attach`` or ``unclaim`` with.
        """
        ids = file_ids(files)
        claim = f"{account.id}:{client_id}" if client_id is not None else f"~{uuid.uuid4().hex}"
        objects = await self._run(self._claim_rows, account.id, ref.id, ids, claim)
        return ids, objects, claim

    @staticmethod
    def _claim_rows(owner_id: int, room_id: int, ids: list[str], claim: str) -> list[dict]:
        with database.atomic():
            rows = {row.uid: row for row in File.select().where(File.uid.in_(ids))}
            for uid in ids:
                row = rows.get(uid)
                if row is None or row.owner_id != owner_id:
                    raise BadRequestError(f"file {uid!r} is not one you uploaded")
                if row.room_id != room_id:
                    raise BadRequestError(f"file {uid!r} was uploaded to another room")
            free = File.claim.is_null() & File.message_id.is_null()
            taken = (
                File.update(claim=claim)
                .where(File.uid.in_(ids) & (free | (File.claim == claim)))
                .execute()
            )
            if taken != len(ids):
                raise ConflictError("a file of this message was already sent in another one")
            return [rows[uid].public() for uid in ids]

    async def attach(self, claim: str, message_id: int) -> None:
        """The message is stored: its files belong to it from now on."""
        await self._run(
            lambda: File.update(message_id=message_id).where(File.claim == claim).execute()
        )

    async def unclaim(self, claim: str) -> None:
        """The send failed: its files may be sent again."""
        await self._run(
            lambda: (
                File.update(claim=None)
                .where((File.claim == claim) & File.message_id.is_null())
                .execute()
            )
        )

    async def release(self, message_file_ids: list[str]) -> int:
        """Delete these files (their message was deleted, or retention dropped it).

        Their stored bytes go too unless another file (the same bytes uploaded
        again) still uses them. Returns how many files were deleted.
        """
        ids = [uid for uid in message_file_ids if isinstance(uid, str)]
        if not ids:
            return 0
        deleted, unused = await self._run(self._release_rows, ids)
        await self._work(self._delete_objects, unused)
        return deleted

    @staticmethod
    def _release_rows(ids: list[str]) -> tuple[int, set[str]]:
        with database.atomic():
            rows = list(File.select().where(File.uid.in_(ids)))
            keys = {k for row in rows for k in (row.sha256, row.thumb_key) if k}
            File.delete().where(File.id.in_([row.id for row in rows])).execute()
        return len(rows), keys - File.keys_in_use(keys)

    def _delete_objects(self, keys: set[str]) -> int:
        for key in keys:
            self.storage.delete(check_key(key))
        return len(keys)

    # -- serving -------------------------------------------------------------------

    async def open_file(self, account: Account | None, uid: str, thumb: bool = False) -> ServedFile:
        """The file ``uid`` (or its thumbnail), for a caller who may read its room.

        ``ForbiddenError`` for anyone else, signed out included; ``NotFoundError``
        when there is no such file.
        """
        row = await self._run(_row_and_room, uid)
        if row is None:
            raise NotFoundError("no such file")
        file, room_name = row
        if account is None:
            raise ForbiddenError("sign in to see files")
        try:
            await self._rooms.open(account, room_name)
        except NotFoundError:
            raise ForbiddenError("you may not read the room of this file") from None
        if thumb and file.thumb_key:
            return ServedFile(
                file.thumb_key,
                await self._work(self.storage.size, file.thumb_key),
                "",
                file.name,
                f'"{file.thumb_key}"',
                True,
            )
        return ServedFile(
            file.sha256,
            file.size,
            file.type,
            file.name,
            f'"{file.sha256}"',
            file.type in INLINE_IMAGE_TYPES,
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The stored bytes ``start``..``end`` (exclusive), chunk by chunk, read in a thread."""
        chunks = self.storage.read(key, start, end)
        try:
            while True:
                chunk = await self._work(next, chunks, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            await self._work(chunks.close)

    # -- operator ------------------------------------------------------------------

    async def totals(self) -> tuple[int, int]:
        """How many files there are and how many bytes they hold (``chatroom stats``)."""
        return await self._run(File.totals)

    async def gc(self, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS) -> GcReport:
        """Remove files nobody can reach, and stored objects no file uses.

        A file is unreachable when it was never sent and is older than the grace
        period, or when its room was deleted. An object is removed when no file
        uses it and it is older than the grace period (an upload may be storing it).
        """
        files, unused = await self._run(self._gc_rows, grace_seconds)
        objects = await self._work(self._delete_objects, unused)
        objects += await self._work(self._gc_objects, grace_seconds)
        temp = await self._work(remove_stale_staging, self.storage, grace_seconds)
        return GcReport(files=files, objects=objects, temp_files=temp)

    @staticmethod
    def _gc_rows(grace_seconds: float) -> tuple[int, set[str]]:
        cutoff = utcnow() - timedelta(seconds=grace_seconds)
        rooms = Room.select(Room.id)
        stale = File.select(File.uid).where(
            (File.message_id.is_null() & (File.created < cutoff)) | File.room_id.not_in(rooms)
        )
        return FilesController._release_rows([row.uid for row in stale])

    def _gc_objects(self, grace_seconds: float) -> int:
        cutoff = time.time() - grace_seconds
        found = [obj for obj in self.storage.objects() if obj.modified < cutoff]
        used = File.keys_in_use({obj.key for obj in found})
        return self._delete_objects({obj.key for obj in found} - used)


def file_ids(value: object) -> list[str]:
    """The ``files`` of a ``send``: 1..10 distinct file ids."""
    if not isinstance(value, list) or not value:
        raise BadRequestError("files must be a non-empty list of file ids")
    if len(value) > MAX_FILES_PER_MESSAGE:
        raise BadRequestError(f"a message may carry at most {MAX_FILES_PER_MESSAGE} files")
    for uid in value:
        if not isinstance(uid, str) or len(uid) != FILE_ID_CHARS:
            raise BadRequestError("files must hold file ids as the upload returned them")
    if len(set(value)) != len(value):
        raise BadRequestError("a file may be in a message once")
    return list(value)


def _row_and_room(uid: str) -> tuple[File, str] | None:
    if not isinstance(uid, str) or len(uid) != FILE_ID_CHARS:
        return None
    file = File.by_uid(uid)
    if file is None:
        return None
    room = Room.get_or_none(Room.id == file.room_id)
    return None if room is None else (file, room.name)
