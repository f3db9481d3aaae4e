"""Where uploaded files' bytes live: a storage interface and its two backends.

``DirectoryStorage`` keeps each object as a file named after its key under one
directory (the default, under the data directory; several hosts need it shared).
``S3Storage`` keeps them in an S3-compatible bucket (``s3://bucket/prefix``).
Keys are content addresses (the sha256 of the bytes, plus a suffix for derived
objects such as thumbnails), so the same bytes are stored once.

Every method blocks (disk or network I/O): callers run them off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

#: A key: lowercase hex (a sha256), optionally ``.`` and a short suffix (``.thumb``).
_KEY_RE = re.compile(r"^[0-9a-f]{64}(\.[a-z]{1,16})?\Z")
#: Bytes per read when an object is streamed out.
READ_CHUNK_BYTES = 64 * 1024


class StorageError(Exception):
    """The backend failed (disk full, bucket unreachable); nothing was stored."""


def check_key(key: str) -> str:
    """``key`` if it is a valid object key; a key never names a path outside the store."""
    if not _KEY_RE.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


@dataclass(frozen=True)
class StoredObject:
    """One object as a listing shows it: its key, size and when it was written (epoch s)."""

    key: str
    size: int
    modified: float


class FileStorage(Protocol):
    """What the file controller needs of a backend. Keys pass ``check_key``."""

    def staging_dir(self) -> Path:
        """A local directory for uploads in progress (temp files)."""

    def put(self, key: str, source: Path) -> None:
        """Store the bytes of the local file ``source`` under ``key`` (no-op when present)."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """The object's size in bytes."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes ``start`` .. ``end`` (exclusive; None: to the end), in chunks."""

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""

    def objects(self) -> Iterator[StoredObject]:
        """Every stored object (for garbage collection)."""


class DirectoryStorage:
    """Objects as files ``<root>/<k[:2]>/<key>``, private to the server's user (0600)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def staging_dir(self) -> Path:
        # Under the root: a finished upload is renamed into place on the same filesystem.
        path = self.root / "tmp"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def put(self, key: str, source: Path) -> None:
        target = self._path(key)
        if target.exists():
            return  # the same bytes are already stored
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Copy to a temp name beside the target, then rename: a reader never
            # sees a half-written object, and ``source`` stays the caller's.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                    while chunk := src.read(READ_CHUNK_BYTES):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageError(f"could not store the file: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
                chunk = f.read(size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def objects(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for shard in self.root.iterdir():
            if shard.name == "tmp" or not shard.is_dir():
                continue
            for path in shard.iterdir():
                if _KEY_RE.match(path.name):
                    stat = path.stat()
                    yield StoredObject(path.name, stat.st_size, stat.st_mtime)


class S3Storage:
    """Objects in an S3-compatible bucket under a prefix, through boto3.

    The URL is ``s3://bucket/prefix``, optionally with ``?endpoint=http://host:port``
    (MinIO, Ceph, moto, ...) and ``&region=``. Credentials come from boto3's usual
    chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, an instance
    role), never from the URL, so no secret is ever printed with it.
    """

    def __init__(self, url: str, staging: Path) -> None:
        import boto3  # imported only when S3 is used: it is slow to import
        from botocore.config import Config as BotoConfig

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("files_url must look like s3://bucket/prefix")
        query = parse_qs(parts.query)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._staging = Path(staging)
        self._client = boto3.client(
            "s3",
            endpoint_url=query.get("endpoint", [None])[0],
            region_name=query.get("region", [None])[0],
            config=BotoConfig(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def staging_dir(self) -> Path:
        self._staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._staging

    def put(self, key: str, source: Path) -> None:
        if self.exists(key):
            return
        try:
            self._client.upload_file(str(source), self.bucket, self._name(key))
        except Exception as exc:
            raise StorageError(f"could not store the file in s3://{self.bucket}: {exc}") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"s3://{self.bucket}: {exc}") from exc
        return True

    def size(self, key: str) -> int:
        reply = self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        return int(reply["ContentLength"])

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        reply = self._client.get_object(Bucket=self.bucket, Key=self._name(key), **extra)
        body: BinaryIO = reply["Body"]
        try:
            while chunk := body.read(READ_CHUNK_BYTES):
                yield chunk
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def objects(self) -> Iterator[StoredObject]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"].rsplit("/", 1)[-1]
                if _KEY_RE.match(key):
                    yield StoredObject(key, int(item["Size"]), item["LastModified"].timestamp())


def open_storage(files_url: str | None, files_dir: Path) -> FileStorage:
    """The backend the settings name: S3 when ``files_url`` is set, else the directory."""
    if files_url:
        return S3Storage(files_url, files_dir / "tmp")
    return DirectoryStorage(files_dir)


def remove_stale_staging(storage: FileStorage, older_than: float) -> int:
    """Delete temp files of uploads that ended without cleaning up (a crash); how many."""
    removed = 0
    cutoff = time.time() - older_than
    staging = storage.staging_dir()
    for path in staging.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
