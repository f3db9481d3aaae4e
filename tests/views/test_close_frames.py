"""No frame after a close frame (RFC 6455 §5.5.1), whoever started the close."""

from __future__ import annotations

import pytest

from tests.rawws import CLOSE, PING, RawSocket, chatter

pytestmark = pytest.mark.timeout(30)


async def frames_until_eof(raw: RawSocket, timeout: float = 10) -> list:
    frames = []
    while (frame := await raw.read_frame(timeout)) is not None:
        frames.append(frame)
    return frames


async def test_no_frame_follows_the_keepalive_close(app_factory):
    # A client that reads everything but never answers a ping: Tornado's keepalive
    # closes it (1000 "ping timed out") while the room keeps talking.
    app = await app_factory(send_burst=100_000, ping_interval=0.5, ping_timeout=0.5)
    alice = await app.client("alice")
    mute = await RawSocket.open(app.port, await app.api.user("mute"))
    await mute.join()
    async with chatter(alice):
        before = []
        while (frame := await mute.read_frame()).opcode != CLOSE:
            before.append(frame)
        assert frame.close_code == 1000 and b"ping timed out" in frame.payload, frame
        assert any(f.opcode == PING for f in before)
        assert sum(f.opcode == 1 and f.json()["type"] == "message" for f in before) > 0
        # The server waits up to 5 s for the client's close, then drops the TCP link;
        # the room talked all along.
        after = await frames_until_eof(mute)
    mute.close()
    assert after == [], f"{len(after)} frames after the close frame, first {after[0]}"
