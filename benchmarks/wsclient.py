"""A lean HTTP/JSON helper and a WebSocket client on a bare ``asyncio.Protocol``.

The load generator must be cheaper per frame than the server it measures, so it
does not use Tornado's coroutine-per-frame client: frames are parsed in
``data_received`` in a tight loop and handed to a callback as raw bytes.
Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Callable

import orjson

try:  # Tornado's C helper (always there with a binary wheel); pure Python otherwise.
    from tornado.speedups import websocket_mask as _mask
except ImportError:  # pragma: no cover
    from tornado.util import _websocket_mask_python as _mask

HOST = "127.0.0.1"


class HttpError(RuntimeError):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


async def http_json(
    port: int,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, object]:
    """One HTTP/1.1 request (Connection: close) to 127.0.0.1; (status, decoded JSON or None)."""

    async def call() -> tuple[int, object]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            data = b"" if body is None else orjson.dumps(body)
            head = [
                f"{method} {path} HTTP/1.1",
                f"Host: {HOST}:{port}",
                "Connection: close",
                "Content-Type: application/json",
                f"Content-Length: {len(data)}",
            ]
            if token:
                head.append(f"Authorization: Bearer {token}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        header, _, payload = raw.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in header.lower():
            payload = _unchunk(payload)
        try:
            return status, orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return status, payload

    return await asyncio.wait_for(call(), timeout)


def _unchunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


def encode_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame: FIN, the opcode, a random 4-byte mask, the masked payload."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + _mask(key, payload)


class WebSocketClient(asyncio.Protocol):
    """One client connection; ``on_frame(payload_bytes, received_at)`` gets every text frame.

    ``received_at`` is ``time.monotonic()`` taken when the bytes arrived, before any
    parsing, so a frame's latency does not include the generator's own work.
    """

    #: The upgrade's path (a subclass speaking another protocol over WebSocket sets its own).
    PATH = "/ws"

    def __init__(self, on_frame: Callable[[bytes, float], None], token: str | None = None) -> None:
        self.on_frame = on_frame
        self.token = token
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._handshake: asyncio.Future | None = None
        self._fragments: list[bytes] = []
        self.closed: asyncio.Future | None = None
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls,
        port: int,
        token: str | None,
        on_frame: Callable[[bytes, float], None],
        path: str | None = None,
        timeout: float = 30.0,
    ) -> WebSocketClient:
        loop = asyncio.get_running_loop()
        path = path or cls.PATH
        client = cls(on_frame, token)
        client._handshake = loop.create_future()
        client.closed = loop.create_future()
        await asyncio.wait_for(loop.create_connection(lambda: client, HOST, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {HOST}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        client.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            await asyncio.wait_for(asyncio.shield(client._handshake), timeout)
        except BaseException:
            client.abort()
            raise
        return client

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(ConnectionError("closed before the upgrade"))
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(self.close_code)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self._buf + data if self._buf else data
        if self._handshake is not None and not self._handshake.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            status_line = buf[: buf.find(b"\r\n")]
            if status_line.split(b" ")[1:2] != [b"101"]:
                self._handshake.set_exception(
                    HttpError(int(status_line.split(b" ")[1]), buf[end + 4 :])
                )
                self.abort()
                return
            self._handshake.set_result(True)
            buf = buf[end + 4 :]
        pos, size = 0, len(buf)
        on_frame = self.on_frame
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + n
            if end > size:
                break
            payload = buf[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode == 0x1 and b0 & 0x80:
                on_frame(payload, now)
            elif opcode in (0x0, 0x1, 0x2):  # fragmented (Tornado never does this)
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole, self._fragments = b"".join(self._fragments), []
                    on_frame(whole, now)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self._write(encode_frame(payload[:2], 0x8))
                self.abort()
                return
            elif opcode == 0x9:
                self._write(encode_frame(payload, 0xA))
        self._buf = buf[pos:]

    # -- sending -------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, frame: dict) -> None:
        self._write(encode_frame(orjson.dumps(frame)))

    def send_raw(self, payload: bytes) -> None:
        self._write(encode_frame(payload))

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        """Send a close frame and wait (bounded) for the server to close the TCP connection."""
        if self.transport is None:
            return
        self._write(encode_frame(code.to_bytes(2, "big"), 0x8))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except asyncio.TimeoutError:
            self.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
