"""Issue 15's benchmark: upload throughput, and message latency while uploads stream.

``python -m benchmarks.run --scenario uploads`` starts one chatroom (directory
storage, the default) and measures, in one run:

- throughput: 10 MiB uploads, raw and multipart, by 1 and by 4 uploaders at once,
  each file streamed in 256 KiB writes on a fresh connection (MB/s = bytes of the
  files / wall time of the batch);
- the steady message load (``--clients``/``--senders``/``--rate``/``--seconds``) run
  twice on the same server and sockets: without uploads, then while one uploader
  streams 10 MiB files back to back for the whole phase. Target: message p99 < 50 ms
  while uploading.

Every wait is bounded (connect 10 s, each write 30 s, each answer 60 s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time

from benchmarks.wsclient import http_json

#: One benchmark file: the default --max-upload-bytes.
UPLOAD_BYTES = 10 * 2**20
#: Message p99 while a 10 MiB upload streams (issue 15).
UPLOAD_P99_MS = 50.0
#: Users taking turns to upload (each may upload 20 files a minute).
UPLOADER_USERS = 20
#: The size of each write of the body.
WRITE_BYTES = 256 * 1024


async def upload_file(port: int, token: str, room: str, data: bytes, multipart: bool) -> float:
    """POST ``data`` as one file, streamed; the seconds it took. Raises unless 201."""
    if multipart:
        boundary = "bench" + secrets.token_hex(8)
        before = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        after = f"\r\n--{boundary}--\r\n".encode()
        content_type, path = f"multipart/form-data; boundary={boundary}", f"/api/rooms/{room}/files"
    else:
        before = after = b""
        content_type = "application/octet-stream"
        path = f"/api/rooms/{room}/files?name=bench.bin"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(before) + len(data) + len(after)}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.monotonic()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        writer.write(head + before)
        view = memoryview(data)
        for at in range(0, len(data), WRITE_BYTES):
            writer.write(view[at : at + WRITE_BYTES])
            await asyncio.wait_for(writer.drain(), 30)
        writer.write(after)
        await asyncio.wait_for(writer.drain(), 30)
        response = await asyncio.wait_for(reader.read(), 60)  # Connection: close
    finally:
        writer.close()
    status = response.split(b" ", 2)[1] if response.count(b" ") >= 2 else b"?"
    if status != b"201":
        raise RuntimeError(f"upload answered {status.decode(errors='replace')}: {response[:300]!r}")
    return time.monotonic() - started


def distinct_files(seed: bytes):
    """Endless 10 MiB files, each different (content addressing would store one once)."""
    for n in itertools.count():
        yield n.to_bytes(8, "big") + seed[8:]


async def uploaders(port: int, tokens: list[str], count: int = UPLOADER_USERS) -> list[tuple]:
    """``count`` users, each with a room of its own (its creator may upload there):
    (token, room) pairs to take turns with, as one user may upload 20 files a minute."""
    pairs = []
    for i, token in enumerate(tokens[-count:]):  # the first made the benchmark rooms
        room = f"uploads-{i}"
        status, reply = await http_json(port, "POST", "/api/rooms", {"name": room}, token=token)
        if status not in (201, 409):
            raise RuntimeError(f"create room {room}: {status} {reply}")
        pairs.append((token, room))
    return pairs


async def throughput(port: int, pairs: list[tuple], multipart: bool, uploaders: int, each: int):
    """``uploaders`` at once, ``each`` files one after another: MB/s over the batch."""
    files = distinct_files(os.urandom(UPLOAD_BYTES))
    users = itertools.cycle(pairs)
    seconds: list[float] = []

    async def one() -> None:
        for _ in range(each):
            token, room = next(users)
            seconds.append(await upload_file(port, token, room, next(files), multipart))

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(uploaders)))
    wall = time.monotonic() - started
    seconds.sort()
    total = uploaders * each * UPLOAD_BYTES
    return {
        "mode": "multipart" if multipart else "raw",
        "uploaders": uploaders,
        "uploads": len(seconds),
        "file_bytes": UPLOAD_BYTES,
        "wall_s": round(wall, 3),
        "mb_per_s": round(total / wall / 1e6, 1),
        "upload_s_p50": round(seconds[len(seconds) // 2], 3),
        "upload_s_max": round(seconds[-1], 3),
    }


class UploadStream:
    """One uploader sending 10 MiB files back to back until stopped."""

    def __init__(self, port: int, pairs: list[tuple]) -> None:
        self.port = port
        self.users = itertools.cycle(pairs)
        self.data = os.urandom(UPLOAD_BYTES)  # the same bytes: stored once, streamed each time
        self.seconds: list[float] = []
        self.errors: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> UploadStream:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                token, room = next(self.users)
                took = await upload_file(self.port, token, room, self.data, False)
                self.seconds.append(took)
            except (OSError, RuntimeError, TimeoutError) as exc:
                self.errors.append(str(exc)[:200])
                await asyncio.sleep(0.5)

    async def stop(self) -> dict:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 90)
        busy = sum(self.seconds)
        return {
            "uploads": len(self.seconds),
            "errors": self.errors[:5],
            "mb_per_s": round(len(self.seconds) * UPLOAD_BYTES / busy / 1e6, 1) if busy else None,
        }
