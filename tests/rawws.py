"""A WebSocket client at the byte level, for tests of what goes over the wire: frames
with any header bits, frames after a close, a reader that stops reading; and a
room that keeps talking meanwhile."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from dataclasses import dataclass

import orjson

from tests.helpers import READ_TIMEOUT

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass(frozen=True)
class Frame:
    """One frame as it came off the wire."""

    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def json(self) -> dict:
        return orjson.loads(self.payload)


def frame_bytes(
    payload: bytes, opcode: int = TEXT, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """A client frame; ``mask=False`` and ``rsv`` bits break RFC 6455 on purpose."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit, length = (0x80 if mask else 0), len(payload)
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += struct.pack("!BH", mask_bit | 126, length)
    else:
        head += struct.pack("!BQ", mask_bit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A handshaken WebSocket over a plain TCP socket; reads only when asked to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.response = b""
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def open(
        cls, port: int, token: str, rcvbuf: int | None = None, extra_headers: str = ""
    ) -> RawSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n"
                f"{extra_headers}\r\n"
            ).encode(),
        )
        raw = cls(sock)
        raw.response = await raw.read_until(b"\r\n\r\n")
        assert raw.response.startswith(b"HTTP/1.1 101"), raw.response
        return raw

    async def _fill(self, timeout: float) -> bool:
        """Read more from the socket; False at end of stream (or a reset)."""
        try:
            chunk = await asyncio.wait_for(self.loop.sock_recv(self.sock, 1 << 16), timeout)
        except ConnectionError:
            return False
        self.buffer += chunk
        return bool(chunk)

    async def read_until(self, marker: bytes, timeout: float = READ_TIMEOUT) -> bytes:
        while marker not in self.buffer:
            assert await self._fill(timeout), f"closed before {marker!r}: {self.buffer!r}"
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    async def _take(self, n: int, timeout: float) -> bytes | None:
        while len(self.buffer) < n:
            if not await self._fill(timeout):
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    async def read_frame(self, timeout: float = READ_TIMEOUT) -> Frame | None:
        """The next server frame; None at the end of the stream."""
        head = await self._take(2, timeout)
        if head is None:
            return None
        assert not head[1] & 0x80, "a server frame must not be masked"
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self._take(2, timeout) or b"\0\0")[0]
        elif length == 127:
            length = struct.unpack("!Q", await self._take(8, timeout) or b"\0" * 8)[0]
        payload = await self._take(length, timeout)
        assert payload is not None, "the stream ended inside a frame"
        return Frame(bool(head[0] & 0x80), head[0] & 0x0F, payload)

    async def next_json(self, kind: str, timeout: float = READ_TIMEOUT) -> dict:
        """The next text frame of type ``kind``, skipping pings and other frames."""
        while True:
            frame = await self.read_frame(timeout)
            assert frame is not None, f"closed waiting for {kind!r}"
            if frame.opcode == TEXT and frame.json()["type"] == kind:
                return frame.json()

    async def until_close(self, timeout: float = READ_TIMEOUT) -> Frame:
        """Skip frames up to the server's close frame; that frame."""
        while True:
            frame = await self.read_frame(timeout)
            assert frame is not None, "the connection ended without a close frame"
            if frame.opcode == CLOSE:
                return frame

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def send_json(self, frame: dict) -> None:
        await self.send(frame_bytes(orjson.dumps(frame)))

    async def join(self, room: str = "lobby") -> None:
        await self.send_json({"type": "join", "room": room})
        await self.next_json("joined")

    def close(self) -> None:
        self.sock.close()


@contextlib.asynccontextmanager
async def chatter(client, interval: float = 0.02):
    """``client`` talks in lobby every ``interval`` seconds while the block runs (and
    reads what comes back, or Tornado's client would stop answering pings)."""

    async def talk() -> None:
        for i in range(100_000):
            await client.send(f"chatter {i}")
            await asyncio.sleep(interval)

    async def listen() -> None:
        while await client.ws.read_message() is not None:
            pass

    tasks = [asyncio.create_task(talk()), asyncio.create_task(listen())]
    try:
        yield
    finally:
        for task in tasks:
            assert not task.done(), task
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
