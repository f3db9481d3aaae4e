"""The WebSocket Origin check compares scheme, host and port, never the host alone."""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError

from chatroom.views import socket
from tests.helpers import ChatClient, connect

HTTPS = {"X-Forwarded-Proto": "https"}


async def opens(app, token: str, headers: dict) -> bool:
    """Whether a socket with these headers gets past the handshake (and says hello)."""
    try:
        ws = await connect(app.ws_url, token, headers=headers)
    except HTTPClientError as exc:
        assert exc.code == 403, exc
        return False
    try:
        assert (await ChatClient(ws, "alice").next("hello"))["user"] == "alice"
    finally:
        ws.close()
    return True


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:{port}",  # the report: another scheme, same host and port
        "ws://127.0.0.1:{port}",
        "http://127.0.0.1:{other}",
        "http://127.0.0.1",
        "http://localhost:{port}",
        "http://127.0.0.1:{port}/path",
        "http://user@127.0.0.1:{port}",
        "http://127.0.0.1:{port}.evil.example",
        "null",
        "",
    ],
)
async def test_a_different_origin_is_403(app, origin):
    token = await app.api.user("alice")
    value = origin.format(port=app.port, other=app.port + 1)
    assert not await opens(app, token, {"Origin": value})


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}", "http://127.0.0.1:{port}/"]
)
async def test_the_own_origin_is_accepted(app, origin):
    token = await app.api.user("alice")
    assert await opens(app, token, {"Origin": origin.format(port=app.port)})


async def test_behind_a_trusted_tls_proxy_the_own_origin_is_https(app_factory):
    app = await app_factory(trusted_proxies=("127.0.0.1",))
    token = await app.api.user("alice")
    host = {"Host": "chat.example"}
    assert await opens(app, token, {**HTTPS, **host, "Origin": "https://chat.example"})
    assert await opens(app, token, {**HTTPS, **host, "Origin": "https://chat.example:443"})
    assert await opens(
        app, token, {**HTTPS, "Host": "chat.example:443", "Origin": "https://chat.example"}
    )
    assert not await opens(app, token, {**HTTPS, **host, "Origin": "http://chat.example"})
    assert not await opens(app, token, {**host, "Origin": "https://chat.example"})
    assert not await opens(app, token, {**HTTPS, **host, "Origin": "https://chat.example:8443"})


async def test_forwarded_proto_from_an_untrusted_peer_does_not_make_https(app):
    token = await app.api.user("alice")
    origin = f"https://127.0.0.1:{app.port}"
    assert not await opens(app, token, {**HTTPS, "Origin": origin})


async def test_allowed_origins_match_scheme_host_and_port(app_factory):
    app = await app_factory(allowed_origins=("https://chat.example.com",))
    token = await app.api.user("alice")
    assert await opens(app, token, {"Origin": "https://chat.example.com"})
    assert await opens(app, token, {"Origin": "https://CHAT.example.com:443"})
    for origin in (
        "http://chat.example.com",
        "https://chat.example.com:8443",
        "https://chat.example.com.evil.example",
        "https://evil.example",
    ):
        assert not await opens(app, token, {"Origin": origin}), origin


@pytest.mark.parametrize(
    ("origin", "key"),
    [
        ("http://a.example", ("http", "a.example", 80)),
        ("https://A.example:443/", ("https", "a.example", 443)),
        ("https://[::1]:8443", ("https", "::1", 8443)),
        ("http://a.example:99999", None),
        ("http://a.example:x", None),
        ("ftp://a.example", None),
        ("https://", None),
        ("https://a.example?x", None),
        ("https://u:p@a.example", None),
    ],
)
def test_origin_key(origin, key):
    assert socket.origin_key(origin) == key
