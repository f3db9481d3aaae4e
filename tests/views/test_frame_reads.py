"""[issue 17] How the strict protocol reads client frames: a frame that arrives whole
leaves the socket registered in epoll (Tornado read it in pieces and dropped and
re-added the socket for each frame: most of an idle server's CPU was its pongs), and
frames split or run together anywhere on the wire still parse. Over a raw socket to
the real app."""

from __future__ import annotations

import asyncio

import pytest

from tests.rawws import PING, PONG, RawSocket, frame_bytes

pytestmark = pytest.mark.timeout(30)

CONTINUATION = 0x0
PING_JSON = b'{"type":"ping"}'


async def test_a_whole_frame_leaves_the_socket_registered(app, monkeypatch):
    raw = await RawSocket.open(app.port, await app.api.user("alice"))
    await raw.next_json("hello")
    loop = asyncio.get_running_loop()
    removed: list[int] = []
    remove_reader = loop.remove_reader  # Tornado's IOLoop drops a socket through it
    client = raw.sock.fileno()  # the test's own socket reads on this loop too

    def counting(fd):
        if fd != client:
            removed.append(fd)
        return remove_reader(fd)

    monkeypatch.setattr(loop, "remove_reader", counting)
    for n in range(30):  # as an idle client answers pings, one frame at a time
        await raw.send(frame_bytes(b"n%d" % n, opcode=PING))
        pong = await raw.read_frame()
        assert (pong.opcode, pong.payload) == (PONG, b"n%d" % n)
    await raw.send(frame_bytes(PING_JSON))
    assert await raw.next_json("pong") == {"type": "pong"}
    # Tornado alone: 31 (one per frame). Read whole: none.
    assert removed == []
    raw.close()


async def test_frames_split_or_run_together_anywhere_still_parse(app):
    raw = await RawSocket.open(app.port, await app.api.user("alice"))
    await raw.next_json("hello")
    padded = b'{"type":"ping","pad":"' + b"x" * 300 + b'"}'  # a 16-bit length
    wire = b"".join(
        [
            frame_bytes(PING_JSON),
            frame_bytes(b"control", opcode=PING),
            frame_bytes(padded),
            frame_bytes(b'{"type":"pi', fin=False),
            frame_bytes(b"", opcode=PING),
            frame_bytes(b'ng"}', opcode=CONTINUATION),
            *(frame_bytes(PING_JSON) for _ in range(20)),
        ]
    )
    for size in (1, 3, 7, len(wire)):  # byte by byte, odd pieces, all in one write
        for start in range(0, len(wire), size):
            await raw.send(wire[start : start + size])
            if size < 8:
                await asyncio.sleep(0)  # the server reads each piece on its own
        answers = []
        while len(answers) < 25:
            frame = await raw.read_frame()
            answers.append(frame.payload if frame.opcode == PONG else frame.json()["type"])
        assert answers == ["pong", b"control", "pong", b"", "pong", *["pong"] * 20], size
    raw.close()
