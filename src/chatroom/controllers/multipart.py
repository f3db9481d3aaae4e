"""A streaming reader of ``multipart/form-data`` bodies that hands out one file part.

Tornado's own parser needs the whole body in memory; uploads are streamed to a
temp file, so this one takes the body chunk by chunk and keeps only a delimiter's
length of it (plus a part's headers) at any time.
"""

from __future__ import annotations

import email.message
import email.utils

from chatroom.controllers.errors import BadRequestError

#: The most bytes one part's headers may take.
MAX_PART_HEADER_BYTES = 16 * 1024
#: The most bytes before the first boundary (browsers send none).
MAX_PREAMBLE_BYTES = 16 * 1024

_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _END = range(5)


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type; None for any other type."""
    message = email.message.Message()
    message["Content-Type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise BadRequestError("a multipart body needs a boundary of 1-70 characters")
    return boundary.encode("latin-1", "replace")


class MultipartFileReader:
    """``feed(chunk)`` returns the bytes of the part named ``file`` found in the chunk.

    Other parts are skipped; a second ``file`` part is ignored. ``close()`` raises
    ``BadRequestError`` unless the body held a ``file`` part and ended with the
    closing boundary (a body cut short, e.g. by a lying Content-Length, is refused).
    """

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        # The first boundary line has no CRLF before it: pretend it had one.
        self._buffer = bytearray(b"\r\n")
        self._state = _PREAMBLE
        self._in_file = False
        self._file_done = False
        self._seen = 0
        self.filename: str | None = None
        self.content_type: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        buffer, out = self._buffer, bytearray()
        buffer += chunk
        keep = len(self._delimiter) - 1
        while True:
            if self._state == _END:
                buffer.clear()  # the epilogue is ignored
                return bytes(out)
            if self._state in (_PREAMBLE, _BODY):
                at = buffer.find(self._delimiter)
                if at < 0:
                    if len(buffer) > keep:
                        if self._in_file:
                            out += buffer[:-keep]
                        self._seen += len(buffer) - keep
                        del buffer[:-keep]
                    if self._state == _PREAMBLE and self._seen > MAX_PREAMBLE_BYTES:
                        raise BadRequestError("no multipart boundary where the body starts")
                    return bytes(out)
                if self._in_file:
                    out += buffer[:at]
                    self._in_file, self._file_done = False, True
                del buffer[: at + len(self._delimiter)]
                self._state = _AFTER_DELIMITER
            elif self._state == _AFTER_DELIMITER:
                if len(buffer) < 2:
                    return bytes(out)
                if buffer[:2] == b"--":
                    self._state = _END
                elif buffer[:2] == b"\r\n":
                    del buffer[:2]
                    self._state = _HEADERS
                else:
                    raise BadRequestError("malformed multipart boundary line")
            else:  # _HEADERS
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_PART_HEADER_BYTES:
                        raise BadRequestError("a multipart part's headers are too long")
                    return bytes(out)
                self._start_part(bytes(buffer[:end]))
                del buffer[: end + 4]
                self._state = _BODY

    def _start_part(self, raw: bytes) -> None:
        headers = email.message.Message()
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        name = headers.get_param("name", header="content-disposition")
        if name is None or email.utils.collapse_rfc2231_value(name) != "file" or self._file_done:
            return
        filename = headers.get_param("filename", header="content-disposition")
        self.filename = "" if filename is None else email.utils.collapse_rfc2231_value(filename)
        self.content_type = headers.get_content_type()
        self._in_file = True

    def close(self) -> None:
        if self._state != _END:
            raise BadRequestError(
                "the multipart body ended before its closing boundary (cut short?)"
            )
        if not self._file_done:
            raise BadRequestError("the multipart body has no part named 'file'")
