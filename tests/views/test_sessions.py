"""Ending a session (logout, logout everywhere, password change, disable, expiry) closes
its sockets at once (1008), on every process; expired sessions authenticate as nobody."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from tornado.httpclient import HTTPClientError
from tornado.web import create_signed_value

from chatroom.cli import main
from tests.helpers import PASSWORD, Browser, ChatClient, body, connect

#: The close reasons (code 1008) of docs/protocol.md.
SESSION_ENDED = "session ended"
SESSION_EXPIRED = "session expired"
#: Long enough for the periodic expiry check (every presence tick) to have run.
EXPIRY_WAIT = 10.0


async def close_of(client: ChatClient, timeout: float = 5.0) -> tuple[int | None, str | None]:
    """Read (bounded) until the server closes the socket; its close code and reason."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            frame = await asyncio.wait_for(client.ws.read_message(), remaining)
        except asyncio.TimeoutError:
            break
        if frame is None:
            return client.ws.close_code, client.ws.close_reason
    raise AssertionError(f"{client.name}: the socket stayed open")


async def still_open(client: ChatClient) -> None:
    await client.send_frame({"type": "ping"})
    await client.next("pong")


async def bearer_socket(app, token: str, name: str = "alice") -> ChatClient:
    client = ChatClient(await connect(app.ws_url, token), name)
    app.clients.append(client)
    await client.next("hello")
    return client


async def cookie_socket(app, cookies: dict[str, str], name: str = "alice") -> ChatClient:
    headers = {
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        "Origin": app.base_url,
    }
    client = ChatClient(await connect(app.ws_url, headers=headers), name)
    app.clients.append(client)
    await client.next("hello")
    return client


async def signed_in_browser(app, name: str = "alice") -> Browser:
    await app.api.register(name)
    browser = Browser(app)
    response = await browser.post_form("/login", {"username": name, "password": PASSWORD})
    assert response.code == 302, response.body
    assert "chatroom_session" in browser.cookies
    return browser


async def refused(app, **kwargs) -> int:
    """The HTTP status of a WebSocket handshake that must fail."""
    with pytest.raises(HTTPClientError) as caught:
        await connect(app.ws_url, **kwargs)
    return caught.value.code


def chatroom_cli(app, *args: str, stdin: str | None = None):
    """``chatroom ARGS`` on the app's data (its SQLite file and Redis), in this process."""
    config = app.server.config
    storage = ["--data-dir", str(config.data_dir), "--redis-url", app.server.redis_url]
    return CliRunner().invoke(main, [*args, *storage], input=stdin)


def age_sessions(app, user: str, by: timedelta) -> None:
    """Move the login time of every session of ``user`` back by ``by``."""
    path = app.server.config.data_dir / "chatroom.db"
    with sqlite3.connect(path, timeout=5) as db:
        rows = db.execute(
            "SELECT s.id, s.created FROM session s JOIN user u ON u.id = s.user_id "
            "WHERE u.name_key = ?",
            (user,),
        ).fetchall()
        assert rows
        for row_id, created in rows:
            moved = datetime.fromisoformat(created) - by
            db.execute("UPDATE session SET created = ? WHERE id = ?", (str(moved), row_id))


# -- logout -----------------------------------------------------------------------------


async def test_logout_closes_the_bearer_sessions_sockets_only(app):
    first = await app.api.user("alice")
    second = await app.api.login("alice")
    ended = await bearer_socket(app, first)
    ended_too = await bearer_socket(app, first)
    other_session = await bearer_socket(app, second)

    # all=0 is the same as no "all": this session only.
    response = await app.api.request("POST", "/api/logout?all=0", token=first)
    assert response.code == 200

    assert await close_of(ended) == (1008, SESSION_ENDED)
    assert await close_of(ended_too) == (1008, SESSION_ENDED)
    await still_open(other_session)
    assert (await app.api.request("GET", "/api/rooms", token=first)).code == 401
    assert await refused(app, token=first) == 401


async def test_logout_form_closes_the_cookie_socket(app):
    browser = await signed_in_browser(app)
    socket = await cookie_socket(app, browser.cookies)
    response = await browser.post_form("/logout", {})
    assert response.code == 302
    assert await close_of(socket) == (1008, SESSION_ENDED)


async def test_api_logout_with_the_cookie_closes_its_socket_and_clears_the_cookie(app):
    browser = await signed_in_browser(app)
    cookies = dict(browser.cookies)
    socket = await cookie_socket(app, cookies)
    headers = {
        "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        "X-XSRFToken": cookies["_xsrf"],
    }
    response = await app.api.request("POST", "/api/logout", headers=headers)
    assert response.code == 200, response.body
    cleared = [c for c in response.headers.get_list("Set-Cookie") if "chatroom_session=" in c]
    assert cleared and cleared[0].startswith('chatroom_session="";'), cleared
    assert await close_of(socket) == (1008, SESSION_ENDED)
    assert (await app.api.request("GET", "/api/rooms", headers=headers)).code == 401


async def test_logout_all_ends_every_session_of_the_caller_and_no_one_elses(app):
    tokens = [await app.api.user("alice")] + [await app.api.login("alice") for _ in range(2)]
    browser = await signed_in_browser(app)
    sockets = [await bearer_socket(app, token) for token in tokens]
    sockets.append(await cookie_socket(app, browser.cookies))
    bob_token = await app.api.user("bob")
    bob = await bearer_socket(app, bob_token, "bob")

    response = await app.api.request("POST", "/api/logout?all=1", token=tokens[1])
    assert response.code == 200, response.body

    for socket in sockets:
        assert await close_of(socket) == (1008, SESSION_ENDED)
    for token in tokens:
        assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401
    assert (await browser.get("/")).code == 302  # the cookie's session ended too
    await still_open(bob)
    assert (await app.api.request("GET", "/api/rooms", token=bob_token)).code == 200
    # A new login after it works as usual.
    fresh = await app.api.login("alice")
    assert (await app.api.request("GET", "/api/rooms", token=fresh)).code == 200


@pytest.mark.parametrize("value", ["", "yes", "2", "1" * 5000, "%00", "true"])
async def test_logout_all_takes_only_1_or_0(app, value):
    token = await app.api.user("alice")
    response = await app.api.request("POST", f"/api/logout?all={value}", token=token)
    assert response.code == 400
    assert body(response)["error"]["code"] == "bad_request"
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 200


async def test_concurrent_logouts_answer_cleanly_and_close_once(app):
    tokens = [await app.api.user("alice")] + [await app.api.login("alice") for _ in range(4)]
    sockets = [await bearer_socket(app, token) for token in tokens]
    calls = [app.api.request("POST", "/api/logout", token=tokens[0]) for _ in range(10)]
    calls += [app.api.request("POST", "/api/logout?all=1", token=t) for t in tokens[1:]]
    answers = await asyncio.gather(*calls)
    assert {r.code for r in answers} <= {200, 401}, [(r.code, r.body) for r in answers]
    assert any(r.code == 200 for r in answers)
    for socket in sockets:
        assert await close_of(socket) == (1008, SESSION_ENDED)
    for token in tokens:
        assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401


# -- the operator: password change, disable -----------------------------------------------


async def test_password_change_ends_every_session_and_closes_the_sockets(app):
    token = await app.api.user("alice")
    browser = await signed_in_browser(app)
    by_token = await bearer_socket(app, token)
    by_cookie = await cookie_socket(app, browser.cookies)
    bob = await bearer_socket(app, await app.api.user("bob"), "bob")

    result = await asyncio.to_thread(
        chatroom_cli, app, "users", "set-password", "alice", "--password-stdin",
        stdin="a brand new password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Set a new password for alice (2 sessions ended)" in result.output

    assert await close_of(by_token) == (1008, SESSION_ENDED)
    assert await close_of(by_cookie) == (1008, SESSION_ENDED)
    await still_open(bob)
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401
    assert (await browser.get("/")).code == 302
    assert await refused(app, token=token) == 401
    assert await app.api.login("alice", "a brand new password")


async def test_disable_closes_the_users_cookie_and_bearer_sockets(app):
    token = await app.api.user("alice")
    browser = await signed_in_browser(app)
    sockets = [await bearer_socket(app, token), await cookie_socket(app, browser.cookies)]
    result = await asyncio.to_thread(chatroom_cli, app, "users", "disable", "alice")
    assert result.exit_code == 0, result.output
    for socket in sockets:
        assert await close_of(socket) == (1008, "account disabled")
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401


# -- expiry ---------------------------------------------------------------------------------


async def test_a_session_older_than_session_days_is_nobody_for_bearer_cookie_and_socket(
    app_factory,
):
    app = await app_factory(session_days=2)
    token = await app.api.user("alice")
    browser = await signed_in_browser(app)
    cookie = "chatroom_session=" + browser.cookies["chatroom_session"]
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 200

    age_sessions(app, "alice", timedelta(days=2, seconds=1))

    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401
    assert (await app.api.request("GET", "/api/rooms", headers={"Cookie": cookie})).code == 401
    assert (await browser.get("/")).code == 302
    assert await refused(app, token=token) == 401
    assert await refused(app, headers={"Cookie": cookie, "Origin": app.base_url}) == 401


async def test_the_default_is_30_days(app):
    token = await app.api.user("alice")
    age_sessions(app, "alice", timedelta(days=29, hours=23))
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 200
    age_sessions(app, "alice", timedelta(hours=1, seconds=1))
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401


async def test_an_open_socket_is_closed_when_its_session_expires(app):
    token = await app.api.user("alice")
    browser = await signed_in_browser(app)
    other = await app.api.login("alice")
    # These sessions end 4 s from now; a newer one stays.
    age_sessions(app, "alice", timedelta(days=30, seconds=-4))
    newer = await app.api.login("alice")
    expiring = [await bearer_socket(app, token), await cookie_socket(app, browser.cookies)]
    expiring.append(await bearer_socket(app, other))
    fresh = await bearer_socket(app, newer)
    for socket in expiring:
        assert await close_of(socket, EXPIRY_WAIT) == (1008, SESSION_EXPIRED)
    await still_open(fresh)
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 401


async def test_a_cookie_signed_longer_ago_than_session_days_is_refused_everywhere(app):
    """The cookie's signed age and the session's are one setting (0.1.0: 31 vs 30 days)."""
    token = await app.api.user("alice")
    old = time.time() - 30.5 * 86400
    value = create_signed_value(
        app.server.cookie_secret, "chatroom_session", token, clock=lambda: old
    ).decode()
    cookie = {"Cookie": f"chatroom_session={value}"}
    # The session row itself is fresh: only the cookie's age refuses it.
    assert (await app.api.request("GET", "/api/rooms", token=token)).code == 200
    assert (await app.api.request("GET", "/api/rooms", headers=cookie)).code == 401
    assert await refused(app, headers={**cookie, "Origin": app.base_url}) == 401
    fresh = create_signed_value(app.server.cookie_secret, "chatroom_session", token).decode()
    socket = await cookie_socket(app, {"chatroom_session": fresh})
    await still_open(socket)


def test_session_days_is_validated(tmp_path):
    from chatroom.config import Config, ConfigError

    assert Config(data_dir=tmp_path).session_days == 30
    assert Config(data_dir=tmp_path, session_days=0.5).session_days == 0.5
    for bad in (0, -1, 3651):
        with pytest.raises(ConfigError, match="session_days"):
            Config(data_dir=tmp_path, session_days=bad)


def test_session_days_option_and_environment(tmp_path):
    serve = main.commands["serve"]
    option = next(p for p in serve.params if p.name == "session_days")
    assert option.envvar == "CHATROOM_SESSION_DAYS" and option.default == 30
    result = CliRunner().invoke(main, ["serve", "--session-days", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "session_days must be more than 0 and at most 3650" in result.output


# -- hostile credentials -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "x" * 60_000},
        {"Authorization": "Bearer \u00ff\u00fe garbage"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"Cookie": "chatroom_session=" + "A" * 3000},
        {"Cookie": "chatroom_session=2|1:0|10:1700000000|16:chatroom_session|4:eA==|" + "0" * 64},
        {"Cookie": 'chatroom_session="\\\\\\"; ;;=;'},
        {"Cookie": "chatroom_session=1; chatroom_session=2; __Host-chatroom_session=3"},
    ],
    ids=[
        "huge-bearer",
        "latin1-bearer",
        "empty-bearer",
        "basic",
        "huge-cookie",
        "bad-signature",
        "garbled-cookie",
        "many-cookies",
    ],
)
async def test_hostile_credentials_are_nobody(app, headers):
    await app.api.user("alice")
    response = await app.api.request("GET", "/api/rooms", headers=headers)
    assert response.code in (400, 401), response.body
    if response.code == 401:
        assert body(response)["error"]["code"] == "unauthorized"
    status = await refused(app, headers={**headers, "Origin": app.base_url})
    assert status in (400, 401)
    assert (await app.api.request("GET", "/healthz")).code == 200


# -- more than one process ----------------------------------------------------------------


async def test_logout_on_one_process_closes_the_socket_on_another(app_factory):
    one = await app_factory()
    two = await app_factory()  # the same SQLite file and Redis, another ChatServer
    token = await one.api.user("alice")
    other = await one.api.login("alice")
    on_two = await bearer_socket(two, token)
    on_one = await bearer_socket(one, token)
    unaffected = await bearer_socket(two, other)

    assert (await one.api.request("POST", "/api/logout", token=token)).code == 200

    assert await close_of(on_two) == (1008, SESSION_ENDED)
    assert await close_of(on_one) == (1008, SESSION_ENDED)
    await still_open(unaffected)
    assert (await two.api.request("GET", "/api/rooms", token=token)).code == 401


async def test_logout_all_and_password_change_reach_every_process(app_factory):
    one = await app_factory()
    two = await app_factory()
    tokens = [await one.api.user("alice"), await two.api.login("alice")]
    sockets = [await bearer_socket(two, tokens[0]), await bearer_socket(one, tokens[1])]
    assert (await one.api.request("POST", "/api/logout?all=1", token=tokens[0])).code == 200
    for socket in sockets:
        assert await close_of(socket) == (1008, SESSION_ENDED)

    token = await one.api.login("alice")
    sockets = [await bearer_socket(one, token), await bearer_socket(two, token)]
    result = await asyncio.to_thread(
        chatroom_cli, one, "users", "set-password", "alice", "--password-stdin",
        stdin="a brand new password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for socket in sockets:
        assert await close_of(socket) == (1008, SESSION_ENDED)
