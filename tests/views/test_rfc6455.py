"""RFC 6455 at the frame level, over a raw socket, and the guards on Tornado internals:
protocol violations are failed with a close frame (1002/1007), FrameWriter's frames
equal Tornado's own, and compression is refused at startup."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
import tornado
import tornado.websocket

from chatroom.app import make_app
from chatroom.views import rfc6455
from chatroom.views.frame_writer import FrameWriter
from chatroom.views.socket import ChatSocketHandler
from tests.rawws import BINARY, CLOSE, PING, PONG, TEXT, RawSocket, frame_bytes

pytestmark = pytest.mark.timeout(30)

PING_JSON = b'{"type":"ping"}'
CONTINUATION = 0x0


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


VIOLATIONS = {
    "unmasked frame": (frame_bytes(PING_JSON, mask=False), 1002),
    "reserved bit RSV1": (frame_bytes(PING_JSON, rsv=0x40), 1002),
    "reserved bit RSV3": (frame_bytes(PING_JSON, rsv=0x10), 1002),
    "reserved data opcode 0x3": (frame_bytes(PING_JSON, opcode=0x3), 1002),
    "reserved control opcode 0xB": (frame_bytes(b"", opcode=0xB), 1002),
    "continuation with no message": (frame_bytes(PING_JSON, opcode=CONTINUATION), 1002),
    "new message inside a fragmented one": (
        frame_bytes(b'{"type":', fin=False) + frame_bytes(PING_JSON),
        1002,
    ),
    "fragmented ping": (frame_bytes(b"x", opcode=PING, fin=False), 1002),
    "ping over 125 bytes": (frame_bytes(b"x" * 126, opcode=PING), 1002),
    "invalid UTF-8": (frame_bytes(b'{"type":"ping","x":"\xff\xfe"}'), 1007),
    "invalid UTF-8 across fragments": (
        frame_bytes(b'{"type":"ping","x":"\xce', fin=False)
        + frame_bytes(b'\xce"}', opcode=CONTINUATION),
        1007,
    ),
    "close payload of one byte": (frame_bytes(b"\x03", opcode=CLOSE), 1002),
    "close code 999": (frame_bytes(close_payload(999), opcode=CLOSE), 1002),
    "close code 1005 (never sent)": (frame_bytes(close_payload(1005), opcode=CLOSE), 1002),
    "close reason not UTF-8": (frame_bytes(close_payload(1000, b"\xff"), opcode=CLOSE), 1007),
}


@pytest.mark.parametrize("name", VIOLATIONS)
async def test_a_protocol_violation_is_failed_with_a_close_frame(app, name):
    data, code = VIOLATIONS[name]
    raw = await RawSocket.open(app.port, await app.api.user("alice"))
    await raw.next_json("hello")
    await raw.send(data)
    frames = []
    while (frame := await raw.read_frame()) is not None:
        frames.append(frame)
    raw.close()
    assert frames, "the connection was dropped without a close frame"
    assert frames[-1].opcode == CLOSE and frames[-1].close_code == code, frames
    assert not any(f.opcode == TEXT and f.json()["type"] == "pong" for f in frames), frames


async def test_valid_frames_still_work(app):
    raw = await RawSocket.open(app.port, await app.api.user("alice"))
    await raw.next_json("hello")
    # A text message in three fragments, split inside a UTF-8 character, with a
    # ping between the fragments (control frames may interleave).
    await raw.send(frame_bytes(b'{"type":"ping","x":"\xce', fin=False))
    await raw.send(frame_bytes(b"are you there", opcode=PING))
    await raw.send(frame_bytes(b'\xba"', opcode=CONTINUATION, fin=False))
    await raw.send(frame_bytes(b"}", opcode=CONTINUATION))
    pong = await raw.read_frame()
    assert (pong.opcode, pong.payload) == (PONG, b"are you there")
    assert await raw.next_json("pong") == {"type": "pong"}
    # A binary frame is answered with an error frame, not a dropped connection.
    await raw.send(frame_bytes(b"\x00\x01", opcode=BINARY))
    assert (await raw.next_json("error"))["code"] == "bad_request"
    # A client close with a private code (4000-4999) is echoed.
    await raw.send(frame_bytes(close_payload(4000, b"bye"), opcode=CLOSE))
    close = await raw.until_close()
    assert close.close_code == 4000
    raw.close()


async def test_compression_is_never_negotiated(app):
    raw = await RawSocket.open(
        app.port,
        await app.api.user("alice"),
        extra_headers="Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    )
    assert b"sec-websocket-extensions" not in raw.response.lower(), raw.response
    assert (await raw.next_json("hello"))["user"] == "alice"
    raw.close()


class Captured:
    """The stream of a bare Tornado protocol: keeps what Tornado writes."""

    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> asyncio.Future:
        self.written += data
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
async def test_frame_writer_frames_like_tornado(size):
    payload = bytes(i % 251 for i in range(size))
    protocol = tornado.websocket.WebSocketProtocol13(
        None, mask_outgoing=False, params=tornado.websocket._WebSocketParams()
    )
    protocol.stream = Captured()
    await protocol.write_message(payload)
    assert FrameWriter().encode(payload) == protocol.stream.written


def test_startup_refuses_websocket_compression(monkeypatch, config):
    rfc6455.check_raw_framing(ChatSocketHandler)  # as shipped: no compression
    monkeypatch.setattr(ChatSocketHandler, "get_compression_options", lambda self: {})
    with pytest.raises(rfc6455.UnsupportedFramingError, match="compression"):
        rfc6455.check_raw_framing(ChatSocketHandler)
    with pytest.raises(rfc6455.UnsupportedFramingError, match="compression"):
        make_app(config, None, "secret")  # type: ignore[arg-type]


def test_startup_refuses_an_unsupported_tornado(monkeypatch):
    monkeypatch.setattr(tornado, "version_info", (7, 0, 0, 0))
    with pytest.raises(rfc6455.UnsupportedFramingError, match=r"Tornado >= 6\.4, < 7"):
        rfc6455.check_raw_framing(ChatSocketHandler)


def test_the_tornado_internals_relied_on_are_there_and_pinned():
    # StrictWebSocketProtocol overrides these; a Tornado without them fails here first.
    for name in ("_receive_frame", "_read_bytes", "_handle_message", "_abort"):
        assert callable(getattr(tornado.websocket.WebSocketProtocol13, name)), name
    assert (6, 4) <= tornado.version_info[:2] < (7, 0)
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"tornado>=6.4,<7"' in pyproject
