"""Uploading files to a room and serving them (SPEC §9, issue 15).

``UploadHandler`` streams the request body into the files controller chunk by
chunk: the whole body is never in memory, a declared Content-Length over the limit
is refused before a byte of it is read, and an upload that stalls is cut off.
``FileHandler`` serves a file to those who may read its room, with headers that
keep an uploaded document from ever running as part of this site.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.parse
from dataclasses import dataclass

import tornado.ioloop
import tornado.iostream
import tornado.web

from chatroom.controllers.errors import ChatError, NotFoundError, TooLargeError
from chatroom.controllers.files import FilesController, ServedFile, Upload
from chatroom.models.files import INLINE_IMAGE_TYPES, THUMBNAIL_PIXELS, sniff_type
from chatroom.views.base import BaseHandler, JsonHandler

#: What a multipart body may add around the file: boundaries and part headers.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: Served files are private to the signed-in user's browser: no shared cache keeps
#: them (another user behind the same proxy must not get them), and an hour later
#: the browser asks again, so losing access to the room is noticed.
CACHE_CONTROL = "private, max-age=3600"
#: The policy of every served file: a document (HTML, SVG, PDF) opened from here
#: runs in a sandbox, as if from an origin of its own, with no script.
FILE_CONTENT_SECURITY_POLICY = "sandbox"
#: The upload route's path: the server-wide body limit leaves it to ``UploadHandler``.
UPLOAD_PATH = re.compile(r"/api/rooms/[^/]+/files\Z")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)\Z")


def _files(handler: tornado.web.RequestHandler) -> FilesController:
    files = handler.settings["controllers"].files
    if files is None:
        raise NotFoundError("this server does not take files")
    return files


@tornado.web.stream_request_body
class UploadHandler(JsonHandler):
    """``POST /api/rooms/<room>/files``: a raw body with ``?name=``, or multipart with a
    ``file`` part; 201 ``{"file": {...}}``."""

    upload: Upload | None = None
    _watchdog: tornado.ioloop.PeriodicCallback | None = None
    #: The whole declared body was read: nothing more is read from the connection.
    _body_read = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Every upload's answer ends its connection (see ``end_connection``); an
        # error page clears the headers and comes back here, so it says so too.
        self.set_header("Connection", "close")

    async def prepare(self) -> None:
        files = _files(self)
        limit = files.limits.max_bytes
        content_type = self.request.headers.get("Content-Type", "")
        multipart = content_type.lower().startswith("multipart/")
        allowed = limit + (MULTIPART_OVERHEAD_BYTES if multipart else 0)
        # Before anything else: the server reads no more than this of the body (a
        # little more, so that a chunked body over the limit reaches ``write``,
        # which answers 413, before Tornado's own cut-off answers 400).
        self.request.connection.set_max_body_size(allowed + MULTIPART_OVERHEAD_BYTES)
        await super().prepare()
        account = self.require_user()
        declared = self.request.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > allowed:
            raise TooLargeError(f"the file is larger than {limit} bytes")
        self.upload = await files.begin(
            account, self.path_args[0], self.get_query_argument("name", None), content_type
        )
        idle = files.limits.idle_seconds
        self._watchdog = tornado.ioloop.PeriodicCallback(
            self._check_idle, max(10.0, idle * 1000 / 4)
        )
        self._watchdog.start()

    def _check_idle(self) -> None:
        upload = self.upload
        if upload is None:
            return
        if time.monotonic() - upload.last_data > _files(self).limits.idle_seconds:
            # Nothing came for too long: drop the connection and what was received.
            self._stop_upload()
            self.request.connection.close()

    def data_received(self, chunk: bytes) -> None:
        if self.upload is None or self._finished:
            return
        try:
            self.upload.write(chunk)
        except ChatError as exc:
            self._stop_upload()
            self._handle_request_exception(exc)
        except OSError as exc:  # the disk is full
            self._stop_upload()
            self.send_error(507, exc_info=(type(exc), exc, exc.__traceback__))

    async def post(self, room: str) -> None:
        self._body_read = True
        upload, self.upload = self.upload, None
        if upload is None or self._finished:
            return
        self._stop_watchdog()
        file = await _files(self).finish(upload)
        self.send_json({"file": file}, status=201)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def _stop_upload(self) -> None:
        self._stop_watchdog()
        upload, self.upload = self.upload, None
        if upload is not None:
            upload.discard()

    def on_connection_close(self) -> None:
        self._stop_upload()
        super().on_connection_close()

    def on_finish(self) -> None:
        self._stop_upload()
        if self._body_read:
            end_connection(self.request.connection)


def end_connection(connection: object) -> None:
    """Close an HTTP/1.1 connection once the response is written, reading nothing more.

    A raw upload's body is the ``Content-Length`` bytes it declared; whatever the
    client sent after them would be parsed as the next request on the connection
    (a "smuggled" ``POST`` run with the uploader's credentials), and HTTP/1.1 has
    no way to tell such leftovers from a pipelined request. So after an upload the
    connection ends. ``Connection: close`` alone is not enough in Tornado: it
    closes the socket but still parses and runs requests already in its read
    buffer. Taking the stream from the connection (what ``detach`` does, which
    Tornado allows only before the body) ends its request loop; the stream is
    closed once the response has been written.
    """
    stream = getattr(connection, "stream", None)
    if not isinstance(stream, tornado.iostream.IOStream) or stream.closed():
        return
    connection.stream = None  # type: ignore[attr-defined]

    def close(written: asyncio.Future) -> None:
        if not written.cancelled():
            written.exception()  # retrieved: a client gone is not an error here
        stream.close()

    stream.write(b"").add_done_callback(close)


class FileHandler(BaseHandler):
    """``GET /files/<id>/<name>`` (``?thumb=1``: the thumbnail of an image)."""

    async def get(self, uid: str) -> None:
        await self._serve(uid, send_body=True)

    async def head(self, uid: str) -> None:
        await self._serve(uid, send_body=False)

    async def _serve(self, uid: str, send_body: bool) -> None:
        files = _files(self)
        thumb = self.get_query_argument("thumb", "0") == "1"
        served = await files.open_file(self.current_user, uid, thumb)
        kind = served.type
        if not kind:  # a thumbnail: its type is that of its bytes
            async with contextlib.aclosing(files.read(served.key, 0, 64)) as head:
                kind = sniff_type(b"".join([chunk async for chunk in head]))
        self._security_headers(served, kind)
        if _etag_matches(self.request.headers.get("If-None-Match", ""), served.etag):
            self.set_status(304)
            return
        start, end = 0, served.size
        wanted = self.request.headers.get("Range")
        if_range = self.request.headers.get("If-Range")
        if wanted and (if_range is None or if_range == served.etag):
            span = parse_range(wanted, served.size)
            if span is None:
                self.set_status(416)
                self.set_header("Content-Range", f"bytes */{served.size}")
                self.clear_header("Content-Type")
                return
            if span != (0, served.size):
                start, end = span
                self.set_status(206)
                self.set_header("Content-Range", f"bytes {start}-{end - 1}/{served.size}")
        self.set_header("Content-Length", str(end - start))
        if not send_body:
            return
        async with contextlib.aclosing(files.read(served.key, start, end)) as chunks:
            async for chunk in chunks:
                self.write(chunk)
                try:
                    await self.flush()
                except tornado.iostream.StreamClosedError:
                    return

    def _security_headers(self, served: ServedFile, kind: str) -> None:
        self.set_header("Content-Type", kind)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", FILE_CONTENT_SECURITY_POLICY)
        self.set_header("Cross-Origin-Resource-Policy", "same-origin")
        self.set_header("ETag", served.etag)
        self.set_header("Cache-Control", CACHE_CONTROL)
        self.set_header("Vary", "Cookie, Authorization")
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Disposition", content_disposition(served.name, served.inline))

    def compute_etag(self) -> str | None:
        return None  # set from the file's hash; Tornado's would hash the body


def content_disposition(name: str, inline: bool) -> str:
    """``inline`` or ``attachment`` with the name, ASCII and RFC 5987 UTF-8 forms."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The byte span ``[start, end)`` one ``Range: bytes=`` header asks for.

    ``(0, size)`` when it cannot be honoured as one range (several ranges, another
    unit: the whole file is sent, as RFC 9110 allows); None when it is unsatisfiable.
    """
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return (0, size)
    first, last = match.groups()
    if not first and not last:
        return (0, size)
    if not first:  # the last N bytes
        count = int(last)
        if count == 0:
            return None
        return (max(0, size - count), size)
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if start >= size or (last and int(last) < start):
        return None
    return (start, end)


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


# -- the server-rendered page (no JavaScript): how a file of a message is shown --------


@dataclass(frozen=True)
class FileView:
    """A file object as ``_message.html`` shows it: a thumbnail or a chip."""

    url: str
    name: str
    size: str
    icon: str
    image: bool
    width: int = 0
    height: int = 0


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KB``: how chips show a size (static/js/uploads.js does the same)."""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MB"  # pragma: no cover - the loop returns


def file_icon(kind: str) -> str:
    """An emoji for a file type (static/js/uploads.js has the same table)."""
    if kind.startswith("image/"):
        return "🖼"
    if kind.startswith("audio/"):
        return "🎵"
    if kind.startswith("video/"):
        return "🎬"
    if kind in ("application/zip", "application/gzip", "application/x-7z-compressed"):
        return "🗜"
    if kind == "application/pdf" or kind.startswith("text/"):
        return "📄"
    return "📎"


def file_view(handler: tornado.web.RequestHandler, file: dict) -> FileView:
    """The UI method ``file_view(f)`` of ``_message.html``."""
    kind = str(file.get("type", ""))
    width, height = file.get("width"), file.get("height")
    url, name = str(file.get("url", "")), str(file.get("name", ""))
    if kind in INLINE_IMAGE_TYPES and isinstance(width, int) and isinstance(height, int):
        scale = min(1.0, THUMBNAIL_PIXELS / max(width, height, 1))
        return FileView(
            url, name, "", "", True, max(1, round(width * scale)), max(1, round(height * scale))
        )
    return FileView(url, name, human_size(int(file.get("size", 0))), file_icon(kind), False)


UI_METHODS = {"file_view": file_view}
