"""HTTP edges: oversized bodies refused from their headers, JSON for every /api/ answer."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest

from tests.helpers import PASSWORD, Browser, body

READ_TIMEOUT = 5.0


async def raw_exchange(app, head: bytes, body_part: bytes = b"") -> tuple[bytes, float]:
    """Send a hand-written request (headers and the start of a body); the raw answer.

    Reads until the server closes the connection, each read bounded by a timeout.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    started = time.monotonic()
    try:
        writer.write(head + body_part)
        await writer.drain()
        answer = b""
        while chunk := await asyncio.wait_for(reader.read(65536), READ_TIMEOUT):
            answer += chunk
        return answer, time.monotonic() - started
    finally:
        writer.close()


def post_head(path: str, length: int | str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, rest


# -- a body over the limit is refused from its headers ---------------------------


@pytest.mark.parametrize("declared", [2**30, 9 * 1024 * 1024, 2 * 1024 * 1024, "9" * 5000])
async def test_declared_body_over_the_limit_is_413_json_without_reading_it(app, declared):
    # Only the headers and a few bytes are sent: an answer means nothing more was read.
    answer, took = await raw_exchange(app, post_head("/api/register", declared), b'{"user')
    status, headers, rest = parse(answer)
    assert status == 413, answer[:200]
    assert headers["content-type"].startswith("application/json")
    assert orjson.loads(rest)["error"]["code"] == "too_large"
    assert took < 3


async def test_expect_continue_over_the_limit_gets_413_not_100(app):
    answer, _ = await raw_exchange(app, post_head("/api/login", 2**30, "Expect: 100-continue\r\n"))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
    assert b"100 (Continue)" not in answer


async def test_a_page_form_over_the_limit_is_413_too(app):
    answer, _ = await raw_exchange(app, post_head("/login", 2**30))
    assert parse(answer)[0] == 413


async def test_the_server_serves_on_after_refusing_huge_bodies(app):
    for _ in range(20):
        answer, _ = await raw_exchange(app, post_head("/api/register", 2**40), b"x" * 100_000)
        assert parse(answer)[0] == 413
    assert (await app.api.register("alice")).code == 201


@pytest.mark.parametrize("declared", ["+5", "0x10", "1e9", "-1", "5, 6"])
async def test_malformed_content_length_is_still_refused(app, declared):
    answer, _ = await raw_exchange(app, post_head("/api/register", declared), b"{}")
    assert parse(answer)[0] == 400


async def test_a_body_at_the_limit_is_still_read(app_factory):
    app = await app_factory(max_body_bytes=1024)
    payload = orjson.dumps({"username": "alice", "password": PASSWORD})
    raw = payload + b" " * (1024 - len(payload))
    response = await app.api.request("POST", "/api/register", raw=raw)
    assert response.code == 201, response.body
    response = await app.api.request("POST", "/api/register", raw=raw + b" ")
    assert response.code == 413
    assert body(response)["error"]["code"] == "too_large"


# -- every /api/ answer is JSON with the right status ----------------------------


async def cookie_session(app) -> dict[str, str]:
    """Headers of a browser signed in by cookie, without an XSRF token."""
    await app.api.register("alice")
    login = await app.api.request("POST", "/api/login", {"username": "alice", "password": PASSWORD})
    return {"Cookie": login.headers["Set-Cookie"].split(";")[0]}


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def json_error_by_cookie(app, method: str, path: str, status: int) -> dict:
    """The JSON error a cookie-signed-in browser without an XSRF token gets."""
    data = b"{}" if method in ("POST", "PUT", "PATCH") else None
    response = await app.api.request(method, path, headers=await cookie_session(app), raw=data)
    assert response.code == status, response.body[:200]
    assert response.headers["Content-Type"].startswith("application/json")
    return {"code": body(response)["error"]["code"], "allow": response.headers.get("Allow")}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", ["/api/nope", "/api/rooms/lobby/nope", "/api/"])
async def test_unknown_api_route_is_json_404_for_every_method(app, method, path):
    error = await json_error_by_cookie(app, method, path, 404)
    assert error["code"] == "not_found"


async def test_head_of_an_unknown_api_route_is_404(app):
    response = await app.api.request("HEAD", "/api/nope")
    assert response.code == 404


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/login", "POST"),
        ("DELETE", "/api/register", "POST"),
        ("PATCH", "/api/logout", "POST"),
        ("GET", "/api/login", "POST"),
        ("DELETE", "/api/rooms", "GET, POST"),
        ("PUT", "/api/rooms/lobby/messages", "GET, POST"),
        ("POST", "/api/rooms/lobby/messages/1", "DELETE, PATCH"),
        ("PUT", "/healthz", "GET"),
    ],
)
async def test_known_route_wrong_method_is_json_405_before_the_xsrf_check(app, method, path, allow):
    error = await json_error_by_cookie(app, method, path, 405)
    assert error == {"code": "method_not_allowed", "allow": allow}


async def test_known_route_right_method_still_needs_the_xsrf_token(app):
    headers = await cookie_session(app)
    response = await app.api.request("POST", "/api/rooms", {"name": "x"}, headers=headers)
    assert response.code == 403
    assert body(response)["error"]["code"] == "forbidden"


async def test_unknown_page_is_still_an_html_404(app):
    response = await app.api.request("GET", "/nope")
    assert response.code == 404
    assert response.headers["Content-Type"].startswith("text/html")


# -- static files carry the pages' security headers ------------------------------


@pytest.mark.parametrize("path", ["/static/js/main.js", "/static/chat.css", "/static/nope.js"])
async def test_static_files_carry_the_security_headers(app, path):
    response = await app.api.request("GET", path)
    assert response.code == (404 if "nope" in path else 200)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_unversioned_modules_are_revalidated_versioned_files_cached(app):
    # main.js imports its modules by relative URL, with no ?v=: a browser must ask
    # again (304 when unchanged) or a new main.js could run with an old module.
    module = await app.api.request("GET", "/static/js/config.js")
    assert module.code == 200 and module.headers["Cache-Control"] == "no-cache"
    versioned = await app.api.request("GET", "/static/js/main.js?v=abc")
    assert "max-age" in versioned.headers["Cache-Control"]


# -- the access log names the path, never the query string -----------------------


async def test_access_log_shows_the_path_without_the_query(app, caplog):
    caplog.set_level(logging.INFO)
    token = await app.api.user("alice")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    await browser.get("/dm?user=secret-bob")
    await browser.get("/rooms/nosuchroom?q=secret-room")
    await app.api.request("GET", "/api/rooms/lobby/messages?since=0&k=secret-api", token=token)
    await app.api.request("GET", "/?next=secret-next")
    text = caplog.text
    assert "secret" not in text, text
    assert "GET /dm (127.0.0.1)" in text
    assert "GET /api/rooms/lobby/messages (127.0.0.1)" in text
