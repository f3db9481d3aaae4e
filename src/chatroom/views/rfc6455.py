"""RFC 6455 at the frame level: what Tornado's ``WebSocketProtocol13`` lets through or
drops without a close frame, failed here with the close code the RFC asks for.

Tornado (6.4-6.x) accepts unmasked client frames, and answers reserved bits,
reserved opcodes, bad fragmentation and invalid UTF-8 by dropping the TCP
connection with no close frame. Tornado has no public hook for this, so
``StrictWebSocketProtocol`` overrides three of its private methods, each only to
look at what passes and then defer to Tornado:

- ``_receive_frame``: notes that the next ``_read_bytes`` is a frame header;
- ``_read_bytes``: checks that header (mask bit, reserved bits, opcode,
  fragmentation) before Tornado acts on it; and reads the stream in one chunk of
  whatever has arrived, not piece by piece (below);
- ``_handle_message``: checks a whole text message's UTF-8 and a close frame's
  code and reason.

A violation sends a close frame (1002 protocol error, 1007 invalid data) and
closes the connection, as Tornado itself does for 1009. ``check_raw_framing``
refuses at startup a Tornado that lacks these methods, and any compression: the
fan-out writes pre-built, uncompressed frames straight to the stream
(``FrameWriter``). tests/views/test_rfc6455.py pins all of it.

[issue 17] Tornado reads a frame in pieces (the 2-byte header, then the mask and
the payload), and between the first and the next the stream holds bytes no read
is waiting for: Tornado then drops the socket from epoll and adds it back for the
next frame. Each pong of an idle socket cost two ``epoll_ctl`` calls and asyncio's
bookkeeping for them: most of an idle server's CPU at 10,000 sockets
(docs/performance.md, scale). ``_read_bytes`` takes every byte that has arrived
(``read_bytes(..., partial=True)``) and serves the pieces from that, so a frame that
arrives whole leaves the stream empty and the socket registered.
"""

from __future__ import annotations

import logging
import struct

import tornado
import tornado.websocket
from tornado.iostream import StreamClosedError

log = logging.getLogger(__name__)

#: The Tornado versions whose private framing methods this module relies on.
SUPPORTED_TORNADO = ((6, 4), (7, 0))
_HOOKS = ("_receive_frame", "_read_bytes", "_handle_message", "_abort")

_FIN, _RSV, _OPCODE, _MASK, _LENGTH = 0x80, 0x70, 0x0F, 0x80, 0x7F
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
#: Close codes a peer may send (RFC 6455 §7.4.1 and the IANA registry); 3000-4999 are free.
_SENDABLE_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))

PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
#: The most one read takes from the stream's buffer (what has arrived, up to this).
READ_CHUNK = 65536


class UnsupportedFramingError(RuntimeError):
    """This Tornado, or a compression setting, would make chatroom's raw frames wrong."""


def header_problem(first: int, second: int, in_message: bool) -> str | None:
    """Why a client frame header breaks RFC 6455 (no extension negotiated), or None.

    ``in_message``: a fragmented data message has begun and not yet ended.
    """
    opcode = first & _OPCODE
    if not second & _MASK:
        return "client frames must be masked"
    if first & _RSV:
        return "reserved bits set"
    if opcode in (_PING, _PONG, _CLOSE):
        if not first & _FIN:
            return "fragmented control frame"
        if second & _LENGTH > 125:
            return "control frame over 125 bytes"
    elif opcode == _CONTINUATION:
        if not in_message:
            return "continuation frame outside a message"
    elif opcode in (_TEXT, _BINARY):
        if in_message:
            return "new message inside a fragmented one"
    else:
        return f"reserved opcode {opcode:#x}"
    return None


def close_problem(data: bytes) -> tuple[int, str] | None:
    """What is wrong with a close frame's payload: (close code to answer, reason), or None."""
    if not data:
        return None
    if len(data) == 1:
        return PROTOCOL_ERROR, "close frame payload of one byte"
    (code,) = struct.unpack("!H", data[:2])
    if code not in _SENDABLE_CLOSE_CODES and not 3000 <= code <= 4999:
        return PROTOCOL_ERROR, f"invalid close code {code}"
    if not _valid_utf8(data[2:]):
        return INVALID_DATA, "close reason is not UTF-8"
    return None


def _valid_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class StrictWebSocketProtocol(tornado.websocket.WebSocketProtocol13):
    """Tornado's server protocol, failing protocol violations with a close frame."""

    # Slots, not the instance dict: Tornado's protocol has 28 attributes and a
    # dict shares its keys with its class's other instances up to 30; two more
    # made each socket's dict a private one, 1.3 KiB larger (issue 17).
    __slots__ = ("_arrived", "_at_header", "_in_message")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._at_header = False
        self._in_message = False
        #: Bytes read from the stream that no frame has taken yet (b"" is shared).
        self._arrived = b""

    async def _receive_frame(self) -> None:
        self._at_header = True
        await super()._receive_frame()

    async def _read_bytes(self, n: int) -> bytes:
        arrived = self._arrived
        if len(arrived) < n:
            chunks, have = [arrived], len(arrived)
            while have < n:  # whatever has arrived, so that the stream is left empty
                chunk = await self.stream.read_bytes(max(n - have, READ_CHUNK), partial=True)
                chunks.append(chunk)
                have += len(chunk)
            arrived = b"".join(chunks)
        data, self._arrived = arrived[:n], arrived[n:]
        self._wire_bytes_in += n
        if self._at_header:
            self._at_header = False
            problem = header_problem(data[0], data[1], self._in_message)
            if problem is not None:
                self._fail(PROTOCOL_ERROR, problem)
                raise StreamClosedError()  # ends Tornado's receive loop, as a lost stream would
            opcode = data[0] & _OPCODE
            if opcode in (_TEXT, _BINARY, _CONTINUATION):
                self._in_message = not data[0] & _FIN
        return data

    def _handle_message(self, opcode: int, data: bytes):
        if opcode == _TEXT and not _valid_utf8(data):
            self._fail(INVALID_DATA, "text frame is not UTF-8")
            return None
        if opcode == _CLOSE and (problem := close_problem(data)) is not None:
            self._fail(*problem)
            return None
        return super()._handle_message(opcode, data)

    def _fail(self, code: int, reason: str) -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 §7.1.7): a close frame, then the TCP close."""
        log.info("closing a socket that broke RFC 6455 (%d: %s)", code, reason)
        self.close(code, reason)
        self._abort()


def strict_protocol(
    handler: tornado.websocket.WebSocketHandler,
    protocol: tornado.websocket.WebSocketProtocol | None,
) -> StrictWebSocketProtocol | None:
    """The protocol Tornado chose for ``handler``, made strict; None (426) for other versions."""
    if not isinstance(protocol, tornado.websocket.WebSocketProtocol13):
        return None
    if protocol.params.compression_options is not None:
        raise UnsupportedFramingError("WebSocket compression is on; chatroom's frames are raw")
    return StrictWebSocketProtocol(handler, False, protocol.params)


def check_raw_framing(handler_class: type[tornado.websocket.WebSocketHandler]) -> None:
    """Refuse to start where pre-built frames or the strict protocol would be wrong.

    Raises ``UnsupportedFramingError`` for a Tornado outside ``SUPPORTED_TORNADO``
    or without the methods ``StrictWebSocketProtocol`` overrides, and for a
    handler whose ``get_compression_options`` enables permessage-deflate.
    """
    low, high = SUPPORTED_TORNADO
    if not low <= tornado.version_info[:2] < high:
        raise UnsupportedFramingError(
            f"chatroom writes WebSocket frames itself and supports Tornado >= 6.4, < 7; "
            f"this is Tornado {tornado.version}"
        )
    missing = [name for name in _HOOKS if not hasattr(tornado.websocket.WebSocketProtocol13, name)]
    if missing:
        raise UnsupportedFramingError(
            f"Tornado {tornado.version} lacks WebSocketProtocol13.{', '.join(missing)}"
        )
    bare = handler_class.__new__(handler_class)
    if handler_class.get_compression_options(bare) is not None:
        raise UnsupportedFramingError(
            f"{handler_class.__name__}.get_compression_options enables WebSocket compression; "
            "chatroom's fan-out writes uncompressed frames, so it must return None"
        )
