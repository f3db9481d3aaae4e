"""BodyLimit: a request whose declared body is over the limit is answered 413 at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable

import orjson
import tornado.http1connection
import tornado.httputil
import tornado.iostream

from chatroom.controllers.errors import code_for_status

log = logging.getLogger("tornado.access")

#: How long a refused connection keeps reading (and dropping) what the client still
#: sends: closing a socket with unread data resets it, and the client could lose the 413.
LINGER_SECONDS = 2.0
_BODY = orjson.dumps(
    {"error": {"code": code_for_status(413), "message": "request body over the size limit"}}
)
_RESPONSE = (
    b"HTTP/1.1 413 Payload Too Large\r\n"
    b"Content-Type: application/json; charset=UTF-8\r\n"
    b"Content-Length: %d\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Connection: close\r\n\r\n%b" % (len(_BODY), _BODY)
)


class BodyLimit(tornado.httputil.HTTPServerConnectionDelegate):
    """Wraps the application for the HTTP server.

    A ``Content-Length`` over ``max_bytes`` is answered 413 with the JSON error of
    SPEC §2 as soon as the headers arrive, without reading the body, and the
    connection is closed. Bodies of unknown length (chunked) are still limited by
    the handlers (413) and by the HTTP server's ``max_body_size``.
    """

    def __init__(
        self,
        app: tornado.httputil.HTTPServerConnectionDelegate,
        max_bytes: int,
        exempt: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: Paths whose handler sets and checks a limit of its own (file uploads).
        self.exempt = exempt

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        delegate = self.app.start_request(server_conn, request_conn)
        return _LimitedRequest(delegate, request_conn, self.max_bytes, self.exempt)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _LimitedRequest(tornado.httputil.HTTPMessageDelegate):
    def __init__(
        self,
        delegate: tornado.httputil.HTTPMessageDelegate,
        connection: tornado.httputil.HTTPConnection,
        max_bytes: int,
        exempt: re.Pattern[str] | None = None,
    ) -> None:
        self._delegate = delegate
        self._connection = connection
        self._max_bytes = max_bytes
        self._exempt = exempt

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        declared = headers.get("Content-Length", "")
        if (
            declared.isascii()
            and declared.isdigit()
            and _over(declared, self._max_bytes)
            and "Transfer-Encoding" not in headers  # invalid together: Tornado answers 400
            and isinstance(self._connection, tornado.http1connection.HTTP1Connection)
            and isinstance(start_line, tornado.httputil.RequestStartLine)
            and not (self._exempt and self._exempt.match(start_line.path.split("?")[0]))
        ):
            path = start_line.path.split("?")[0]
            address = getattr(self._connection.context, "remote_ip", "")
            log.warning(
                "413 %s %s (%s): a body of %s bytes refused unread",
                start_line.method,
                path,
                address,
                declared,
            )
            # The stream is ours from here: Tornado neither reads the body nor writes
            # its own answer (it would send a bare 400).
            return _refuse(self._connection.detach())
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._delegate.on_connection_close()


def _over(digits: str, limit: int) -> bool:
    # int() refuses over 4300 digits; a number that long is over any limit anyway.
    digits = digits.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit


async def _refuse(stream: tornado.iostream.IOStream) -> None:
    try:
        await stream.write(_RESPONSE)
        stream.socket.shutdown(socket.SHUT_WR)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_discard(stream), LINGER_SECONDS)
    except (tornado.iostream.StreamClosedError, OSError):
        pass  # the client has gone: nothing left to tell it
    finally:
        stream.close()


async def _discard(stream: tornado.iostream.IOStream) -> None:
    while True:
        await stream.read_bytes(64 * 1024, partial=True)
