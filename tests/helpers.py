"""Small domain helpers for tests: an HTTP API client and a WebSocket ChatClient."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
import pytest
from playhouse.db_url import connect as connect_database
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

#: Every socket read is bounded: a lost message fails the test fast.
READ_TIMEOUT = 5.0

PASSWORD = "correct horse battery"


class Api:
    """Calls the JSON API of a running server."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = AsyncHTTPClient()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict | None = None,
        raw: bytes | None = None,
    ) -> HTTPResponse:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is None and method == "POST":
            data = b""
        request = HTTPRequest(
            self.base_url + path,
            method=method,
            body=data,
            headers=all_headers,
            follow_redirects=False,
            request_timeout=15,
        )
        return await self.http.fetch(request, raise_error=False)

    async def register(self, name: str, password: str = PASSWORD) -> HTTPResponse:
        return await self.request("POST", "/api/register", {"username": name, "password": password})

    async def login(self, name: str, password: str = PASSWORD) -> str:
        response = await self.request(
            "POST", "/api/login", {"username": name, "password": password}
        )
        assert response.code == 200, response.body
        return orjson.loads(response.body)["token"]

    async def user(self, name: str) -> str:
        """Register (if new) and log in; the Bearer token."""
        response = await self.register(name)
        assert response.code in (201, 409), response.body
        return await self.login(name)


def without_epoch(rooms: list[dict]) -> list[dict]:
    """``hello.rooms`` without each room's ``epoch`` (SPEC §8), which is random; checks
    that every room has one."""
    assert all(isinstance(r.get("epoch"), str) for r in rooms), rooms
    return [{k: v for k, v in r.items() if k != "epoch"} for r in rooms]


def body(response: HTTPResponse) -> Any:
    return orjson.loads(response.body)


@dataclass
class ChatClient:
    """A WebSocket client speaking the chat protocol, with bounded reads."""

    ws: WebSocketClientConnection
    name: str
    unread: list[dict] = field(default_factory=list)

    async def send_frame(self, frame: Any) -> None:
        await self.ws.write_message(
            frame if isinstance(frame, (str, bytes)) else orjson.dumps(frame).decode()
        )

    async def send(self, text: str, room: str = "lobby", client_id: str | None = None) -> None:
        frame = {"type": "send", "room": room, "text": text}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send_frame(frame)

    async def join(self, room: str = "lobby", since: int | None = None) -> dict:
        frame: dict = {"type": "join", "room": room}
        if since is not None:
            frame["since"] = since
        await self.send_frame(frame)
        return await self.next("joined")

    async def read_frame(self, timeout: float = READ_TIMEOUT) -> dict | None:
        raw = await asyncio.wait_for(self.ws.read_message(), timeout)
        return None if raw is None else orjson.loads(raw)

    async def next(self, kind: str, timeout: float = READ_TIMEOUT, **match: Any) -> dict:
        """The next frame of type ``kind`` (with the ``match`` field values); others are kept."""

        def wanted(frame: dict) -> bool:
            return frame["type"] == kind and all(frame.get(k) == v for k, v in match.items())

        for i, frame in enumerate(self.unread):
            if wanted(frame):
                return self.unread.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no {kind!r} frame; kept {self.unread[-5:]}")
            frame = await self.read_frame(remaining)
            if frame is None:
                raise ConnectionError(f"{self.name}: socket closed waiting for {kind!r}")
            if wanted(frame):
                return frame
            self.unread.append(frame)

    async def next_of(self, *kinds: str, timeout: float = READ_TIMEOUT) -> dict:
        """The next frame whose type is one of ``kinds`` (others are kept for later)."""
        for i, frame in enumerate(self.unread):
            if frame["type"] in kinds:
                return self.unread.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            frame = await self.read_frame(remaining)
            if frame is None:
                raise ConnectionError(f"{self.name}: socket closed waiting for {kinds}")
            if frame["type"] in kinds:
                return frame
            self.unread.append(frame)
        raise TimeoutError(f"{self.name}: none of {kinds}; kept {self.unread[-5:]}")

    async def answer(self, timeout: float = READ_TIMEOUT) -> dict:
        """The ``ack`` or ``error`` that answers a send (other frames are kept for later)."""
        return await self.next_of("ack", "error", timeout=timeout)

    async def nothing(self, kind: str, wait: float = 0.3, **match: Any) -> None:
        """Assert no frame of type ``kind`` (with the ``match`` values) arrives in ``wait`` s."""

        def wanted(frame: dict) -> bool:
            return frame["type"] == kind and all(frame.get(k) == v for k, v in match.items())

        assert not any(wanted(f) for f in self.unread), self.unread
        try:
            while True:
                frame = await self.read_frame(wait)
                if frame is None:
                    return
                assert not wanted(frame), frame
                self.unread.append(frame)
        except asyncio.TimeoutError:
            return

    def close(self) -> None:
        self.ws.close()


async def sent(client: ChatClient, text: str, client_id: str) -> int:
    """Send ``text`` to lobby and wait for its ``ack``: the stored message's id."""
    await client.send(text, client_id=client_id)
    answer = await client.answer()
    assert answer["type"] == "ack", answer
    return answer["id"]


async def connect(
    ws_url: str, token: str | None = None, headers: dict | None = None, name: str = "client"
) -> WebSocketClientConnection:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = HTTPRequest(ws_url, headers=all_headers, request_timeout=10)
    return await websocket_connect(request, max_message_size=16 * 1024 * 1024)


#: Where the SQL servers for backend tests are; scripts/test sets both.
SQL_SERVER_VARIABLES = {
    "postgresql": "CHATROOM_TEST_POSTGRESQL_URL",
    "mysql": "CHATROOM_TEST_MYSQL_URL",
}


@contextlib.contextmanager
def temporary_database(kind: str) -> Iterator[str]:
    """A database of its own on the ``kind`` server, dropped afterwards; yields its URL."""
    variable = SQL_SERVER_VARIABLES[kind]
    server_url = os.environ.get(variable)
    if not server_url:
        pytest.skip(f"{variable} is not set (scripts/test sets it when it finds a server)")
    name = f"chatroom_test_{secrets.token_hex(4)}"
    quote = '"' if kind == "postgresql" else "`"
    admin = connect_database(server_url)
    if kind == "postgresql":
        admin.connect()
        admin.connection().autocommit = True  # CREATE DATABASE refuses a transaction
    admin.execute_sql(f"CREATE DATABASE {quote}{name}{quote}")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        admin.execute_sql(f"DROP DATABASE IF EXISTS {quote}{name}{quote}")
        admin.close()


class Browser:
    """A cookie-keeping HTTP client that submits forms like a browser without JavaScript."""

    def __init__(self, app) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    async def get(self, path: str, headers: dict | None = None) -> HTTPResponse:
        return await self._fetch(path, "GET", headers=headers)

    async def post_form(
        self, path: str, fields: dict, xsrf: bool = True, headers: dict | None = None
    ) -> HTTPResponse:
        if xsrf:
            if "_xsrf" not in self.cookies:
                await self.get("/login")
            fields = {**fields, "_xsrf": self.cookies["_xsrf"]}
        return await self._fetch(path, "POST", urlencode(fields).encode(), headers)

    async def _fetch(
        self, path: str, method: str, data: bytes | None = None, headers: dict | None = None
    ) -> HTTPResponse:
        all_headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if data is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = HTTPRequest(
            self.app.base_url + path,
            method=method,
            body=data,
            headers={**all_headers, **(headers or {})},
            follow_redirects=False,
        )
        response = await self.app.api.http.fetch(request, raise_error=False)
        for header in response.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if value and "expires=Thu, 01 Jan 1970" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response


def count_measures(archive, monkeypatch) -> list[None]:
    """Record each call of an ArchiveController's ``measure_lag`` (the real one runs)."""
    calls: list[None] = []
    real = archive.measure_lag

    async def counted(rooms=None):
        calls.append(None)
        return await real(rooms)

    monkeypatch.setattr(archive, "measure_lag", counted)
    return calls
