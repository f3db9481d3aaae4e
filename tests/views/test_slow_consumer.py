"""A reader that cannot keep up is closed (1013) without slowing anyone else."""

from __future__ import annotations

import asyncio
import socket

from tests.rawws import RawSocket


async def stalled_socket(port: int, token: str) -> socket.socket:
    """A WebSocket that completes the handshake, joins lobby, then never reads again."""
    raw = await RawSocket.open(port, token, rcvbuf=4096)  # little kernel buffering
    await raw.send_json({"type": "join", "room": "lobby"})
    return raw.sock


async def drain(client, into: list[dict]) -> None:
    """Read like a live browser: every frame, as soon as it arrives."""
    while (frame := await client.read_frame(timeout=30)) is not None:
        into.append(frame)


async def test_slow_reader_is_closed_and_others_get_everything(app_factory, caplog):
    caplog.set_level("INFO", logger="chatroom.views.socket")
    app = await app_factory(send_burst=100_000, max_queued_bytes=256 * 1024)
    alice = await app.client("alice")
    bob = await app.client("bob")
    slow = await stalled_socket(app.port, await app.api.user("slowpoke"))
    await alice.next("presence", user="slowpoke")
    alice_saw: list[dict] = []
    bob_saw: list[dict] = []
    readers = [
        asyncio.create_task(drain(c, seen)) for c, seen in ((alice, alice_saw), (bob, bob_saw))
    ]
    # ~10 MB of frames: more than the kernel's socket buffers (up to 4 MB each way
    # on loopback) plus the stalled socket's 256 KiB queue.
    text, count = "x" * 3990, 2500
    for i in range(count):
        await alice.send(f"{i} {text}")
        if i % 20 == 0:
            await asyncio.sleep(0.001)  # a person typing fast, not a tight loop

    def slowpoke_offline() -> bool:
        return any(
            f["type"] == "presence" and f["user"] == "slowpoke" and f["state"] == "offline"
            for f in alice_saw
        )

    for _ in range(300):
        messages = [f for f in bob_saw if f["type"] == "message"]
        if len(messages) == count and slowpoke_offline():
            break
        await asyncio.sleep(0.05)
    assert [m["id"] for m in messages] == list(range(1, count + 1)), "bob missed messages"
    assert slowpoke_offline(), "the stalled socket was not dropped"
    assert not any(r.done() for r in readers), "a live reader was disconnected"
    for reader in readers:
        reader.cancel()
    assert "closing a slow consumer" in caplog.text
    # Its connection really ends: the close frame (1013) sits behind the data the
    # client never read, so after 5 s without a reply the server drops the TCP link.
    loop = asyncio.get_running_loop()
    ended, deadline = False, loop.time() + 20
    while loop.time() < deadline:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(slow, 1 << 20), 10)
        except ConnectionError:
            ended = True
            break
        if not chunk:
            ended = True
            break
    slow.close()
    assert ended
