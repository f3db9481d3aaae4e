"""``GET /ws``: the WebSocket. Authenticates, checks Origin, decodes frames, calls the
chat controller, and implements the controller's ``Connection`` protocol."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from typing import Any

import orjson
import tornado.iostream
import tornado.util
import tornado.websocket

from chatroom.controllers import Account, ChatError, validation
from chatroom.controllers import frames as server_frames
from chatroom.controllers.errors import (
    BadRequestError,
    TooManyConnectionsError,
)
from chatroom.views.auth import Authenticated
from chatroom.views.frame_writer import STALL_MARKS, STALL_SLACK_BYTES, unacknowledged_bytes
from chatroom.views.lean_socket import LeanWebSocket
from chatroom.views.origin import origin_key
from chatroom.views.rfc6455 import strict_protocol

log = logging.getLogger(__name__)

#: The UI namespace of every socket: it renders no template (see ``initialize``).
_NO_UI = tornado.util.ObjectDict()


def echoable_fields(message: str) -> dict[str, str] | None:
    """``room`` and ``client_id`` of a frame the strict parser refused, to name in its error.

    Python's own parser accepts lone surrogate escapes (and NaN), which orjson
    refuses; with it the error can still tell the client which send failed.
    Only strings that can be sent back (no lone surrogates) are kept. None when
    even that parser finds no JSON object.
    """
    try:
        frame = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if not isinstance(frame, dict):
        return None
    return {
        name: value
        for name in ("room", "client_id")
        if isinstance(value := frame.get(name), str) and not validation.has_lone_surrogate(value)
    }


class ChatSocketHandler(Authenticated, LeanWebSocket):
    """One client connection speaking the protocol of SPEC §3.

    It authenticates like every other handler (``Authenticated``) and is closed
    (1008) when the session it was opened with ends or expires.
    """

    # An idle socket is mostly this object: its own state in slots, out of the
    # instance dict that Tornado's attributes already fill (issue 17).
    __slots__ = (
        "_closing",
        "_counted",
        "_outbox",
        "_protocol",
        "_queued_bytes",
        "_queued_frames",
        "_sent_total",
        "_stall_marks",
        "_unflushed",
        "account",
        "conn_id",
    )
    account: Account
    conn_id: str
    #: Frames queued this tick; a list only while some are (most sockets idle most ticks).
    _outbox: list[bytes] | tuple[()]
    _protocol: tornado.websocket.WebSocketProtocol | None
    #: (time, bytes sent by then) of recent writes, a few at most (a list: an empty
    #: deque alone is 760 bytes); made by the first write.
    _stall_marks: list[tuple[float, int]] | None

    def initialize(self) -> None:
        # Tornado builds each handler a UI namespace, one closure per UI method of
        # the pages (~2.6 KiB); a socket would keep it for its whole life unused.
        self.ui = _NO_UI
        self._closing = self._counted = False
        self._outbox = ()
        self._queued_bytes = self._queued_frames = self._unflushed = self._sent_total = 0
        self._protocol = self._stall_marks = None

    @property
    def chat(self):
        return self.settings["controllers"].chat

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Authenticate and check Origin, then ``upgrade`` (``LeanWebSocket``): this
        coroutine stays suspended for the socket's whole life."""
        if self.chat.connection_count >= self.settings["config"].max_connections:
            return self.refuse(503, "this server holds all the sockets it may; retry later")
        session = await self.authenticate()
        if session is None:
            return self.refuse(401, "sign in first")
        headers = self.request.headers
        origin = headers.get("Origin")
        if origin is None and self.credentials.kind == "cookie":
            return self.refuse(403, "a browser socket must send its Origin")
        if origin is not None and not self.check_origin(origin):
            return self.refuse(403, "cross-origin sockets are not allowed")
        self.account = session.account
        self.conn_id = os.urandom(8).hex()
        socket_life = self.upgrade(*args, **kwargs)
        del session, headers, origin, args, kwargs  # not kept while suspended
        if socket_life is not None:
            await socket_life

    def check_origin(self, origin: str) -> bool:
        """The server's own origin (scheme, host and port) or one of --allowed-origins."""
        wanted = origin_key(origin)
        if wanted is None:
            return False
        if wanted in {origin_key(o) for o in self.settings["config"].allowed_origins}:
            return True
        # request.protocol is https behind a trusted TLS proxy (apply_trusted_proxy).
        own_host = self.request.headers.get("Host", "")
        return bool(own_host) and wanted == origin_key(f"{self.request.protocol}://{own_host}")

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Chat frames are small and must leave at once, not wait for Nagle's
        # algorithm and the client's delayed ACK (~40 ms a frame).
        self.set_nodelay(True)
        self.chat.metrics.connections.inc()
        self._counted = True
        self.settings["pinger"].add(self)
        self.drop_upgrade_state()
        try:
            await self.chat.connect(self, self.session)
        except TooManyConnectionsError as exc:
            self.close(exc.close_code, exc.close_reason)
        except ChatError as exc:
            self.deliver(server_frames.error(exc))
            self.close(1011, exc.code)

    async def on_message(self, message: str | bytes) -> None:
        frame: Any = None
        try:
            if isinstance(message, bytes):
                raise BadRequestError("frames must be text (JSON), not binary")
            try:
                frame = orjson.loads(message)
            except orjson.JSONDecodeError as exc:
                frame = echoable_fields(message)
                if frame is None:
                    raise BadRequestError("the frame is not valid JSON") from exc
                raise BadRequestError(
                    "the frame is not valid JSON: lone surrogates, NaN and Infinity are refused"
                ) from exc
            if not isinstance(frame, dict):
                raise BadRequestError("a frame must be a JSON object")
            await self._dispatch(frame)
        except ChatError as exc:
            self.chat.metrics.errors.labels(exc.code).inc()
            if isinstance(frame, dict):
                self.deliver(server_frames.error(exc, frame.get("room"), frame.get("client_id")))
            else:
                self.deliver(server_frames.error(exc))

    async def _dispatch(self, frame: dict) -> None:
        chat, kind = self.chat, frame.get("type")
        known = kind if kind in server_frames.CLIENT_FRAME_TYPES else "unknown"
        chat.metrics.frames_in.labels(known).inc()
        if kind == "send":
            with chat.metrics.send_seconds.time():
                await chat.send(
                    self,
                    frame.get("room"),
                    frame.get("text"),
                    frame.get("client_id"),
                    frame.get("files"),  # issue 15
                    frame.get("reply_to"),  # issue 12
                )
        elif kind == "join":
            await chat.join(
                self,
                frame.get("room"),
                frame.get("since"),
                frame.get("since_rev"),
                frame.get("epoch"),  # SPEC §8
            )
        elif kind == "edit":  # issue 12: SPEC §5
            await chat.edit(
                self, frame.get("room"), frame.get("id"), frame.get("text"), frame.get("client_id")
            )
        elif kind == "delete":
            await chat.delete(self, frame.get("room"), frame.get("id"), frame.get("client_id"))
        elif kind == "react":
            await chat.react(
                self,
                frame.get("room"),
                frame.get("id"),
                frame.get("emoji"),
                frame.get("on"),
                frame.get("client_id"),
            )
        elif kind == "leave":
            await chat.leave(self, frame.get("room"))
        elif kind == "typing":
            await chat.typing(self, frame.get("room"))
        elif kind == "read":
            await chat.read(self, frame.get("room"), frame.get("id"))
        elif kind == "ping":
            self.deliver(server_frames.PONG)
        else:
            raise BadRequestError(f"unknown frame type {str(kind)[:40]!r}")

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        # Tornado's protocol, failing RFC 6455 violations with 1002/1007 (views/rfc6455.py).
        self._protocol = strict_protocol(self, super().get_websocket_protocol())
        return self._protocol

    def on_close(self) -> None:
        self._closing = True
        self.settings["pinger"].discard(self)
        if self._counted:
            self._counted = False
            self.chat.metrics.connections.dec()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the loop is gone (never during ChatServer.stop); nothing to do
            return
        # on_close cannot be a coroutine; the task is kept in the app's set until done.
        tasks: set[asyncio.Task] = self.settings["background_tasks"]
        task = asyncio.ensure_future(self.chat.disconnect(self))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # -- the Connection protocol --------------------------------------------

    def writable(self) -> bool:
        """False once either side began the closing handshake: no frame may follow a close
        (RFC 6455 §5.5.1), whether chatroom, the client or Tornado's keepalive closed it."""
        if self._closing:
            return False
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            self._closing = True
            return False
        return True

    def deliver(self, frame: bytes) -> None:
        """Queue a frame; everything queued in one event-loop tick goes out in one write."""
        if not self.writable():
            return
        writer = self.settings["frame_writer"]
        if self._outbox:
            self._outbox.append(writer.encode(frame))
        else:
            self._outbox = [writer.encode(frame)]
            writer.flush_soon(self)

    def flush_outbox(self) -> None:
        """Write every frame queued since the last tick in one stream write."""
        framed, self._outbox = self._outbox, ()
        if not framed or not self.writable():
            return
        config = self.settings["config"]
        size = sum(map(len, framed))
        # A write always fits an empty queue (a long ``joined`` may alone exceed the
        # limit); the limit is on what piles up behind it.
        if self._queued_frames and (
            self._queued_bytes + size > config.max_queued_bytes
            or self._queued_frames + len(framed) > config.max_queued_frames
        ):
            # A reader that cannot keep up is dropped; it must never slow the others
            # or grow this process's memory without bound. It reconnects with since.
            log.info("closing a slow consumer (%d bytes queued)", self._queued_bytes)
            self._drop_slow("too slow: outgoing queue full")
            return
        now = time.monotonic()
        marks = self._stall_marks
        if marks is None:
            marks = self._stall_marks = []
        if marks and now - marks[0][0] >= config.stall_seconds and self._stalled(now):
            # A reader that stopped reading at a normal chat rate never fills the queue
            # (the kernel buffers absorb it); what it leaves unacknowledged shows it.
            log.info("closing a stalled reader (unacknowledged for %.1f s)", now - marks[0][0])
            self._drop_slow("too slow: nothing read")
            return
        # Whole, already framed WebSocket frames straight to the stream: Tornado's
        # write_message would re-frame the payload and start a Task per recipient.
        try:
            written = self.ws_connection.stream.write(
                framed[0] if len(framed) == 1 else b"".join(framed)
            )
        except tornado.iostream.StreamClosedError:
            self._closing = True
            return
        # A single write larger than the whole limit (a long ``joined``) is not
        # counted, or the next small frame behind it would look like a slow reader.
        counted = size if size <= config.max_queued_bytes else 0
        self._queued_bytes += counted
        self._queued_frames += len(framed)
        self._unflushed += size
        self._sent_total += size
        if not marks or now - marks[-1][0] >= config.stall_seconds / STALL_MARKS:
            marks.append((now, self._sent_total))
        written.add_done_callback(functools.partial(self._written, counted, len(framed), size))

    def _written(self, counted: int, count: int, size: int, _future: asyncio.Future) -> None:
        self._queued_bytes -= counted
        self._queued_frames -= count
        self._unflushed -= size

    def _stalled(self, now: float) -> bool:
        """Whether bytes written ``stall_seconds`` ago are still not acknowledged by the peer.

        Each mark says "the first N bytes were written by then"; bytes neither
        still in Tornado's buffer nor unacknowledged in the kernel's have reached
        the client, so marks up to that count are dropped.
        """
        marks = self._stall_marks or []
        pending = self._unflushed + unacknowledged_bytes(self.ws_connection.stream.socket)
        delivered = self._sent_total - pending + STALL_SLACK_BYTES
        while marks and marks[0][1] <= delivered:
            del marks[0]
        return bool(marks) and now - marks[0][0] >= self.settings["config"].stall_seconds

    def _drop_slow(self, reason: str) -> None:
        self.chat.metrics.slow_consumers.inc()
        self._closing = True
        self.close(1013, reason)

    def abort(self) -> None:
        """Drop the TCP connection without waiting for the client's close frame."""
        protocol = self._protocol
        if protocol is not None and protocol.stream is not None:
            protocol.stream.close()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        super().close(code, reason)
