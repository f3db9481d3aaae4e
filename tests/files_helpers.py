"""Helpers of the file tests (issue 15): image bytes, multipart bodies, raw HTTP, disk checks."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from pathlib import Path

import orjson
from PIL import Image

from tests.helpers import READ_TIMEOUT, body


def png(width: int = 40, height: int = 30, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 60, height: int = 20, orientation: int = 6) -> bytes:
    """A JPEG whose EXIF holds a GPS position and a rotation (6: 90 degrees clockwise)."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera Maker"
    gps = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that declares a huge size (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def multipart(content: bytes, filename: str, boundary: str = "xYzBoUnDaRy") -> tuple[bytes, str]:
    """A multipart/form-data body with a text part and a ``file`` part; (body, content type)."""
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="note"\r\n\r\n'
            "hello\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def upload(app, token: str, content: bytes, name: str = "a.png", room: str = "lobby"):
    """POST a raw upload; the response."""
    from urllib.parse import quote

    return await app.api.request(
        "POST",
        f"/api/rooms/{quote(room, safe='')}/files?name={quote(name, safe='')}",
        token=token,
        raw=content,
        headers={"Content-Type": "application/octet-stream"},
    )


async def uploaded(app, token: str, content: bytes, name: str = "a.png", room: str = "lobby"):
    response = await upload(app, token, content, name, room)
    assert response.code == 201, response.body
    return body(response)["file"]


def files_on_disk(root: Path) -> list[Path]:
    """Every regular file under ``root`` (stored objects and temp files alike)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def raw_request(port: int, head: bytes, parts: list[bytes] = (), close: bool = False):
    """Send ``head`` and ``parts`` on a plain socket; the (reader, writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    for part in parts:
        writer.write(part)
    await writer.drain()
    if close:
        writer.write_eof()
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict]:
    """The status and JSON body of a response on a raw socket (the server closes it)."""
    data = await asyncio.wait_for(reader.read(), READ_TIMEOUT)
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(rest) if rest.startswith(b"{") else {}


def upload_head(room: str, token: str, length: int | None, name: str = "x.bin", extra: str = ""):
    length_line = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"POST /api/rooms/{room}/files?name={name} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"{length_line}{extra}\r\n"
    ).encode()


async def wait_until_empty(root: Path, timeout: float = 5.0) -> None:
    """Wait until no file is left under ``root`` (cleanup runs when the server notices)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while files_on_disk(root):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"left on disk: {files_on_disk(root)}")
        await asyncio.sleep(0.05)
