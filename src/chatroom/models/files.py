"""Uploaded files: the ``file`` table, file names and what a file's bytes are (sniffing).

A row is one upload: who uploaded it to which room, its sanitised name, its size,
the type sniffed from its bytes, the sha256 that is also its storage key, image
dimensions and thumbnail key, and the message that carries it once it is sent.
The bytes themselves live in a ``file_storage`` backend, stored once per sha256.

Images (checking, cleaning, thumbnails) are models/images.py.
"""

from __future__ import annotations

import unicodedata

import peewee

from chatroom.models.database import BaseModel, utcnow
from chatroom.models.images import (  # noqa: F401 - re-exported: the names callers know
    MAX_IMAGE_PIXELS,
    THUMBNAIL_PIXELS,
    ImageInfo,
    ImageRejected,
    process_image,
)

#: The longest stored file name, in characters (the extension is kept when cut).
MAX_NAME_CHARS = 200
#: Types shown inline in the page; every other type is served as an attachment.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: The suffix of a thumbnail's storage key.
THUMB_SUFFIX = ".thumb"


class File(BaseModel):
    """One uploaded file. ``uid`` is its public, unguessable id (in URLs and ``send``).

    ``message_id`` is the id (in ``room_id``'s history) of the message that carries
    it; NULL until it is sent. ``claim`` marks a send in progress (its dedupe key),
    so two sends cannot both take one file and a retried send finds it again.
    Users and rooms are referenced by id, not by foreign key: deleting a room does
    not wait for its files; ``chatroom files gc`` removes what it left behind.
    """

    uid = peewee.CharField(max_length=32, unique=True)
    owner_id = peewee.IntegerField(index=True)
    room_id = peewee.IntegerField(index=True)
    name = peewee.CharField(max_length=255)
    size = peewee.BigIntegerField()
    type = peewee.CharField(max_length=100)
    sha256 = peewee.CharField(max_length=64, index=True)
    width = peewee.IntegerField(null=True)
    height = peewee.IntegerField(null=True)
    thumb_key = peewee.CharField(max_length=80, null=True)
    created = peewee.DateTimeField(default=utcnow, index=True)
    message_id = peewee.BigIntegerField(null=True, index=True)
    claim = peewee.CharField(max_length=200, null=True)

    @classmethod
    def by_uid(cls, uid: str) -> File | None:
        return cls.get_or_none(cls.uid == uid)

    @classmethod
    def totals(cls) -> tuple[int, int]:
        """How many files there are and their bytes (each upload counted)."""
        count, size = cls.select(peewee.fn.COUNT(cls.id), peewee.fn.SUM(cls.size)).scalar(
            as_tuple=True
        )
        return int(count or 0), int(size or 0)

    @classmethod
    def keys_in_use(cls, keys: set[str]) -> set[str]:
        """Which of these storage keys (sha256 or thumbnail) some row still uses."""
        if not keys:
            return set()
        used = set()
        shas = [k for k in keys if "." not in k]
        thumbs = [k for k in keys if "." in k]
        if shas:
            used |= {r.sha256 for r in cls.select(cls.sha256).where(cls.sha256.in_(shas))}
        if thumbs:
            used |= {
                r.thumb_key for r in cls.select(cls.thumb_key).where(cls.thumb_key.in_(thumbs))
            }
        return used

    def public(self) -> dict:
        """The file object of SPEC §9 (``url`` is where ``GET`` serves it)."""
        item = {
            "id": self.uid,
            "name": self.name,
            "size": self.size,
            "type": self.type,
            "url": file_url(self.uid, self.name),
        }
        if self.width is not None:
            item["width"], item["height"] = self.width, self.height
        return item


def file_url(uid: str, name: str) -> str:
    """``/files/<id>/<name>``: the name is there for the browser's "save as" only."""
    from urllib.parse import quote

    return f"/files/{uid}/{quote(name, safe='')}"


# -- names ---------------------------------------------------------------------

#: Unicode categories dropped from names: controls (NUL, newlines), format characters
#: (RTL/LTR overrides and isolates, zero-width joiners), surrogates, unassigned.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def clean_name(raw: str) -> str:
    """A file name safe to store and show: no path, no control or bidi characters.

    ``../../etc/passwd`` becomes ``passwd``; an RTL override (which makes
    ``evil\u202egnp.exe`` look like ``evilexe.png``) is dropped; a long name is cut to
    ``MAX_NAME_CHARS`` keeping its extension. An empty result is the caller's
    error to report.
    """
    name = unicodedata.normalize("NFC", raw)
    name = "".join(" " if ch in "\t\n\r" else ch for ch in name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split())  # collapse runs of spaces, trim both ends
    name = name.strip(".") if set(name) <= {"."} else name
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_CHARS].rstrip()
    return name


# -- what the bytes are ----------------------------------------------------------

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (4, b"ftyp", "video/mp4"),
]
#: The tags WHATWG's MIME sniffing takes as HTML, lowercased.
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
    b"<img",
    b"<svg",
    b"<object",
    b"<embed",
    b"<meta",
    b"<form",
)
#: How many leading bytes ``sniff_type`` looks at.
SNIFF_BYTES = 4096


def sniff_type(head: bytes) -> str:
    """The MIME type of a file from its first bytes; the client's claim is never used.

    Anything a browser might render as a document (HTML, SVG, XML) is named as
    such, so it is served as an attachment in a sandbox, never inline.
    """
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if text.startswith(b"<?xml") or text.startswith(b"<svg"):
        return "image/svg+xml" if b"<svg" in text else "application/xml"
    for tag in _HTML_TAGS:
        if text.startswith(tag) and text[len(tag) : len(tag) + 1] in (b" ", b">", b""):
            return "image/svg+xml" if tag == b"<svg" else "text/html"
    if b"\x00" not in head:
        try:
            # The last character may be cut in half by the sniffing window.
            head.decode("utf-8") if len(head) < SNIFF_BYTES else head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text/plain"
    return "application/octet-stream"
