"""Behind a TLS proxy: forwarded headers are believed only from --trusted-proxies."""

from __future__ import annotations

from tests.helpers import PASSWORD, ChatClient, connect

HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


async def login_cookie(app, headers: dict) -> str:
    await app.api.register("alice")
    response = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}, headers=headers
    )
    assert response.code == 200
    return response.headers["Set-Cookie"]


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(app):
    cookie = await login_cookie(app, HTTPS)
    assert cookie.startswith("chatroom_session=")
    assert "Secure" not in cookie


async def test_https_through_a_trusted_proxy_gets_a_host_prefixed_secure_cookie(app_factory):
    app = await app_factory(trusted_proxies=("127.0.0.1",))
    cookie = await login_cookie(app, HTTPS)
    assert cookie.startswith("__Host-chatroom_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    pair = cookie.split(";")[0]
    rooms = await app.api.request("GET", "/api/rooms", headers={**HTTPS, "Cookie": pair})
    assert rooms.code == 200
    # The same cookie over plain HTTP (no forwarded https) is not accepted.
    plain = await app.api.request("GET", "/api/rooms", headers={"Cookie": pair})
    assert plain.code == 401
    headers = {**HTTPS, "Cookie": pair, "Origin": f"https://127.0.0.1:{app.port}"}
    ws = await connect(app.ws_url, headers=headers)
    client = ChatClient(ws, "alice")
    assert (await client.next("hello"))["user"] == "alice"
    ws.close()


def test_trusted_proxies_must_be_addresses(tmp_path):
    import pytest

    from chatroom.config import Config, ConfigError

    assert Config(data_dir=tmp_path, trusted_proxies=("10.0.0.0/8", "::1")).trusted_proxy_networks
    with pytest.raises(ConfigError):
        Config(data_dir=tmp_path, trusted_proxies=("nginx.local",))
