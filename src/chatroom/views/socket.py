"""``GET /ws``: the WebSocket. Authenticates, checks Origin, decodes frames, calls the
chat controller, and implements the controller's ``Connection`` protocol."""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson
import tornado.iostream
import tornado.util
import tornado.websocket

from chatroom.controllers import Account, ChatError
from chatroom.controllers import frames as server_frames
from chatroom.controllers.errors import BadRequestError
from chatroom.views.base import apply_trusted_proxy, bearer_token, session_cookie_name

log = logging.getLogger(__name__)

#: The UI namespace of every socket: it renders no template (see ``initialize``).
_NO_UI = tornado.util.ObjectDict()


class ChatSocketHandler(tornado.websocket.WebSocketHandler):
    """One client connection speaking the protocol of SPEC §3."""

    account: Account
    conn_id: str
    _closing = False
    #: Frames queued this tick; a list only while some are (most sockets idle most ticks).
    _outbox: list[bytes] | tuple[()] = ()
    _counted = False
    _queued_bytes = 0
    _queued_frames = 0

    def initialize(self) -> None:
        # Tornado builds each handler a UI namespace, one closure per UI method of
        # the pages (~2.6 KiB); a socket would keep it for its whole life unused.
        self.ui = _NO_UI

    @property
    def chat(self):
        return self.settings["controllers"].chat

    async def get(self, *args: Any, **kwargs: Any) -> None:
        apply_trusted_proxy(self.request, self.settings["config"].trusted_proxy_networks)
        token = bearer_token(self)
        by_cookie = token is None
        if by_cookie:
            cookie = self.get_signed_cookie(session_cookie_name(self.request), max_age_days=31)
            token = cookie.decode() if cookie else None
        account = await self.settings["controllers"].auth.authenticate(token)
        if account is None:
            return self._refuse(401, "unauthorized", "sign in first")
        origin = self.request.headers.get("Origin")
        if origin is None and by_cookie:
            return self._refuse(403, "forbidden", "a browser socket must send its Origin")
        if origin is not None and not self.check_origin(origin):
            return self._refuse(403, "forbidden", "cross-origin sockets are not allowed")
        self.account = account
        self.conn_id = uuid.uuid4().hex
        await super().get(*args, **kwargs)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(orjson.dumps({"error": {"code": code, "message": message}}))

    def check_origin(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in (o.lower() for o in self.settings["config"].allowed_origins):
            return True
        own_host = self.request.headers.get("Host", "").lower()
        return urlsplit(origin).netloc == own_host and bool(own_host)

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Chat frames are small and must leave at once, not wait for Nagle's
        # algorithm and the client's delayed ACK (~40 ms a frame).
        self.set_nodelay(True)
        self.chat.metrics.connections.inc()
        self._counted = True
        try:
            await self.chat.connect(self)
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
                raise BadRequestError("the frame is not valid JSON") from exc
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
                await chat.send(self, frame.get("room"), frame.get("text"), frame.get("client_id"))
        elif kind == "join":
            await chat.join(self, frame.get("room"), frame.get("since"))
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

    def on_close(self) -> None:
        self._closing = True
        if self._counted:
            self._counted = False
            self.chat.metrics.connections.dec()
        # on_close cannot be a coroutine; the task is kept in the app's set until done.
        tasks: set[asyncio.Task] = self.settings["background_tasks"]
        task = asyncio.ensure_future(self.chat.disconnect(self))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # -- the Connection protocol --------------------------------------------

    def deliver(self, frame: bytes) -> None:
        """Queue a frame; everything queued in one event-loop tick goes out in one write."""
        if self._closing or self.ws_connection is None:
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
        if self._closing or self.ws_connection is None or not framed:
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
            self.chat.metrics.slow_consumers.inc()
            self._closing = True
            self.close(1013, "too slow: outgoing queue full")
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
        written.add_done_callback(functools.partial(self._written, counted, len(framed)))

    def _written(self, size: int, count: int, _future: asyncio.Future) -> None:
        self._queued_bytes -= size
        self._queued_frames -= count

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        super().close(code, reason)


class FrameWriter:
    """Frames payloads once and flushes every socket that has frames once per tick.

    Fan-out hands the same ``bytes`` object to every recipient in a row, so
    remembering the last one frames each message once, not once per socket; and
    one callback per event-loop tick flushes all sockets with queued frames,
    instead of one callback per socket. Server frames are never masked, and
    chatroom enables no compression.
    """

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._framed = b""
        self._pending: list[ChatSocketHandler] = []

    def encode(self, payload: bytes) -> bytes:
        if payload is not self._payload:
            length = len(payload)
            if length < 126:
                header = struct.pack("!BB", 0x81, length)
            elif length < 65536:
                header = struct.pack("!BBH", 0x81, 126, length)
            else:
                header = struct.pack("!BBQ", 0x81, 127, length)
            self._payload, self._framed = payload, header + payload
        return self._framed

    def flush_soon(self, socket: ChatSocketHandler) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush_all)
        self._pending.append(socket)

    def _flush_all(self) -> None:
        pending, self._pending = self._pending, []
        for socket in pending:
            socket.flush_outbox()
