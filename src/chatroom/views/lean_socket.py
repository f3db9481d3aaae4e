"""LeanWebSocket: Tornado's WebSocket handler keeping nothing of its handshake for the
socket's life, and kept alive by the process's one ``Pinger`` (issue 17: an idle socket
costs ~15 KiB, where Tornado's bare one holds ~14 and chatroom's held ~22).

Tornado's ``WebSocketHandler.get`` stays suspended for as long as the socket is
open, with the request headers, a ``map`` and a lambda in its frame; its
keepalive is a task per socket. Here ``upgrade`` makes the same checks in the
subclass's own suspended ``get``, ``drop_upgrade_state`` empties what only the
handshake needed once the socket is open, and ``send_ping`` / ``on_pong`` /
``ping_timed_out`` are what ``views/pinger.py`` calls.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import orjson
import tornado.iostream
import tornado.websocket

from chatroom.controllers.errors import code_for_status

#: A ping frame with no payload (server frames are never masked).
PING_FRAME = b"\x89\x00"
#: The one empty set of trusted proxies that every socket's HTTP context shares.
_NO_PROXIES: frozenset[str] = frozenset()


class LeanWebSocket(tornado.websocket.WebSocketHandler):
    """The handshake and keepalive of a WebSocket handler, lean (see the module)."""

    def refuse(self, status: int, message: str) -> None:
        """Answer the upgrade request with a JSON error instead of a socket."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        error = {"code": code_for_status(status), "message": message}
        self.finish(orjson.dumps({"error": error}))

    def upgrade(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None] | None:
        """Tornado's ``WebSocketHandler.get`` after the caller's own checks: the upgrade
        headers, the cross-site check of Tornado >= 6.5; the socket's life to await,
        or None when refused. Not a coroutine itself: the caller's ``get`` awaits
        the socket directly, with no frame of this one kept alive beside it."""
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket":
            return self.refuse(400, 'a socket must ask to "Upgrade" to "websocket"')
        if "upgrade" not in [s.strip().lower() for s in headers.get("Connection", "").split(",")]:
            return self.refuse(400, '"Connection" must be "Upgrade"')
        # Tornado >= 6.5 also refuses a cross-site Sec-Fetch-Site without an Origin.
        cross_origin = getattr(self, "_check_cross_origin", None)
        if cross_origin is not None and cross_origin(self.check_origin) is not None:
            return self.refuse(403, "cross-origin sockets are not allowed")
        self.open_args, self.open_kwargs = args, kwargs
        self.ws_connection = self.get_websocket_protocol()
        if self.ws_connection is None:
            self.set_status(426, "Upgrade Required")
            self.set_header("Sec-WebSocket-Version", "13")
            return None
        return self.ws_connection.accept_connection(self)

    def drop_upgrade_state(self) -> None:
        """Once open: free the request's and the 101 response's headers and the parsed
        cookies, which the suspended upgrade would keep (~1.5 KiB); and compact the
        handler's attributes (Tornado adds seven when it detaches the stream, which
        leaves the dict twice the size it needs)."""
        request = self.request
        for headers in (request.headers, self._headers):
            headers.clear()
            # Deleting keys one by one leaves a dict its table; clear() gives it back.
            for table in vars(headers).values():
                if isinstance(table, dict):
                    table.clear()
        request.__dict__.pop("_cookies", None)
        # Tornado gives each connection its own empty set of trusted proxies (~200
        # bytes), read only when it parses a request's X-Forwarded headers.
        context = getattr(request.connection, "context", None)
        if getattr(context, "trusted_downstream", None) == _NO_PROXIES:
            context.trusted_downstream = _NO_PROXIES
        self.__dict__ = dict(self.__dict__)

    # -- keepalive: one timer for all sockets (views/pinger.py) ----------------

    def writable(self) -> bool:
        """Whether a frame may still be written (a subclass knows more)."""
        connection = self.ws_connection
        return connection is not None and not connection.is_closing()

    def send_ping(self) -> None:
        """An empty ping frame, straight to the socket when nothing waits before it
        (a third of Tornado's ``write_ping``, which makes a Future per frame). A
        socket that turns out closed is noticed by its read side."""
        if not self.writable():
            return
        stream = self.ws_connection.stream
        rest = PING_FRAME
        if not stream.writing():
            try:
                rest = rest[stream.socket.send(rest) :]
            except BlockingIOError:
                pass
            except OSError:
                return
            if not rest:
                return
        try:
            stream.write(rest)
        except tornado.iostream.StreamClosedError:
            return

    def on_pong(self, data: bytes) -> None:
        self.settings["pinger"].pong(self)

    def ping_timed_out(self) -> None:
        self.close(1000, "ping timed out")  # what Tornado's own keepalive sends
