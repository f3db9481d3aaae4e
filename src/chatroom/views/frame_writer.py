"""What the fan-out writes: ``FrameWriter`` frames each payload once and flushes every
socket with queued frames once per event-loop tick; ``unacknowledged_bytes`` tells
the socket's stall check what the peer has not acknowledged yet."""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

try:  # Linux: how many written bytes the peer has not acknowledged yet
    import fcntl
    import termios

    _TIOCOUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - other systems
    _TIOCOUTQ = None

#: Bytes of Tornado's own frames (pings, pongs, close) that may sit unacknowledged
#: beside ours without counting as a stall.
STALL_SLACK_BYTES = 1024
#: A stall check remembers one write per this fraction of ``stall_seconds``.
STALL_MARKS = 4


def unacknowledged_bytes(sock: object) -> int:
    """Bytes in the kernel's send queue the peer has not acknowledged (0 if unknown)."""
    if _TIOCOUTQ is None:
        return 0
    try:
        queued = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return 0
    return struct.unpack("i", queued)[0]


class Flushable(Protocol):
    """A socket with frames queued for the next tick (``ChatSocketHandler``)."""

    def flush_outbox(self) -> None: ...


class FrameWriter:
    """Frames payloads once and flushes every socket that has frames once per tick.

    Fan-out hands the same ``bytes`` object to every recipient in a row, so
    remembering the last one frames each message once, not once per socket; and
    one callback per event-loop tick flushes all sockets with queued frames,
    instead of one callback per socket. Server frames are never masked, and
    chatroom enables no compression (``check_raw_framing`` refuses it at startup;
    tests/views/test_rfc6455.py compares these frames with Tornado's own).
    """

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._framed = b""
        self._pending: list[Flushable] = []

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

    def flush_soon(self, socket: Flushable) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush_all)
        self._pending.append(socket)

    def _flush_all(self) -> None:
        pending, self._pending = self._pending, []
        for socket in pending:
            socket.flush_outbox()
