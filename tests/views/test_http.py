"""HTTP routes of SPEC §2 through the real server: JSON API, pages, forms, errors."""

from __future__ import annotations

import re

import orjson
import pytest

from tests.helpers import PASSWORD, Browser, body


async def test_register_returns_201_and_the_user(app):
    response = await app.api.register("Alice")
    assert response.code == 201
    user = body(response)["user"]
    assert user["name"] == "Alice" and user["created"].endswith("+00:00")


async def test_names_are_unique_case_insensitively(app):
    assert (await app.api.register("Alice")).code == 201
    response = await app.api.register("aLiCe")
    assert response.code == 409
    assert body(response)["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "", "password": PASSWORD},
        {"username": "a" * 33, "password": PASSWORD},
        {"username": "bad name", "password": PASSWORD},
        {"username": "<script>", "password": PASSWORD},
        {"username": "émile", "password": PASSWORD},
        {"username": "bob", "password": "short"},
        {"username": "bob", "password": "x" * 257},
        {"username": "bob", "password": 12345678},
        {"username": ["bob"], "password": PASSWORD},
        {"password": PASSWORD},
        {},
    ],
)
async def test_register_rejects_invalid_input_with_400(app, payload):
    response = await app.api.request("POST", "/api/register", payload)
    assert response.code == 400
    assert body(response)["error"]["code"] == "bad_request"


async def test_password_length_counts_code_points(app):
    assert (await app.api.register("eight", "密码密码密码密码")).code == 201
    assert (await app.api.register("seven", "密码密码密码密")).code == 400
    assert (await app.api.register("max", "😀" * 256)).code == 201


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b'"str"', b"{", b"\xff\xfe"])
async def test_malformed_bodies_are_400(app, raw):
    response = await app.api.request("POST", "/api/register", raw=raw)
    assert response.code == 400
    assert body(response)["error"]["code"] == "bad_request"


@pytest.mark.parametrize("size", [1024 * 1024, 5 * 1024 * 1024])
async def test_body_over_one_mib_is_413(app, size):
    raw = orjson.dumps({"username": "x", "password": "y" * size})
    response = await app.api.request("POST", "/api/register", raw=raw)
    assert response.code == 413
    assert body(response)["error"]["code"] == "too_large"


async def test_login_gives_token_and_cookie(app):
    await app.api.register("alice")
    response = await app.api.request(
        "POST", "/api/login", {"username": "ALICE", "password": PASSWORD}
    )
    assert response.code == 200
    data = body(response)
    assert data["user"]["name"] == "alice" and len(data["token"]) >= 32
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert data["token"] not in cookie  # signed, not the bare token


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "alice"},
        {"username": 5, "password": PASSWORD},
    ],
)
async def test_bad_credentials_are_401(app, payload):
    await app.api.register("alice")
    response = await app.api.request("POST", "/api/login", payload)
    assert response.code == 401
    assert body(response)["error"]["code"] == "unauthorized"


async def test_logout_ends_only_that_session(app):
    first = await app.api.user("alice")
    second = await app.api.login("alice")
    assert (await app.api.request("POST", "/api/logout", token=first)).code == 200
    assert (await app.api.request("GET", "/api/rooms", token=first)).code == 401
    assert (await app.api.request("GET", "/api/rooms", token=second)).code == 200


@pytest.mark.parametrize("token", ["", "forged", "x" * 500, "Bearer"])
async def test_api_refuses_missing_or_forged_tokens(app, token):
    response = await app.api.request("GET", "/api/rooms", token=token or None)
    assert response.code == 401
    assert body(response)["error"]["code"] == "unauthorized"


async def test_rooms_list_create_and_conflict(app):
    token = await app.api.user("alice")
    created = await app.api.request("POST", "/api/rooms", {"name": "general", "topic": "t"}, token)
    assert created.code == 201
    assert body(created)["room"] == {
        "name": "general",
        "topic": "t",
        "is_direct": False,
        "members": 1,
        "member": True,
        "unread": 0,
        "last_id": 0,
        "mentions": 0,
        "private": False,
        "role": "owner",
    }
    again = await app.api.request("POST", "/api/rooms", {"name": "general"}, token)
    assert again.code == 409
    other = await app.api.user("bob")
    listed = body(await app.api.request("GET", "/api/rooms", token=other))["rooms"]
    assert [r["name"] for r in listed] == ["general", "lobby"]
    general = listed[0]
    assert (general["member"], general["members"], general["unread"]) == (False, 1, 0)


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a" * 65, "sp ace", "dm:a:b", 5, None])
async def test_bad_room_names_are_400(app, name):
    token = await app.api.user("alice")
    response = await app.api.request("POST", "/api/rooms", {"name": name}, token)
    assert response.code == 400


async def test_room_history_and_since(app):
    alice = await app.client("alice")
    for i in range(5):
        await alice.send(f"m{i}")
        await alice.next("ack")
    token = await app.api.login("alice")
    full = body(await app.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert [m["id"] for m in full["messages"]] == [1, 2, 3, 4, 5]
    assert set(full["messages"][0]) == {"room", "id", "user", "text", "ts", "rev"}
    part = body(await app.api.request("GET", "/api/rooms/lobby/messages?since=3", token=token))
    assert [m["id"] for m in part["messages"]] == [4, 5] and part["gap"] is False
    for bad in ("-1", "x", "1.5", str(2**53 + 1)):
        response = await app.api.request(
            "GET", f"/api/rooms/lobby/messages?since={bad}", token=token
        )
        assert response.code == 400


async def test_history_of_unknown_room_404_and_foreign_dm_403(app):
    token = await app.api.user("carol")
    await app.api.user("alice")
    await app.api.user("bob")
    assert (await app.api.request("GET", "/api/rooms/nowhere/messages", token=token)).code == 404
    response = await app.api.request("GET", "/api/rooms/dm:alice:bob/messages", token=token)
    assert response.code == 403
    assert body(response)["error"]["code"] == "forbidden"


async def test_healthz(app):
    response = await app.api.request("GET", "/healthz")
    assert response.code == 200
    assert body(response) == {"status": "ok", "redis": "ok", "database": "ok", "archive": "ok"}


async def test_unknown_api_route_is_json_404(app):
    response = await app.api.request("GET", "/api/nothing")
    assert response.code == 404
    assert body(response)["error"]["code"] == "not_found"


async def test_errors_never_show_a_stack_trace(app):
    response = await app.api.request("POST", "/api/rooms", raw=b"{")
    assert b"Traceback" not in response.body


# -- pages ------------------------------------------------------------------


async def test_signed_out_root_redirects_to_login(app):
    response = await Browser(app).get("/")
    assert response.code == 302 and response.headers["Location"].startswith("/login")


async def test_register_form_signs_in_and_shows_the_chat(app):
    browser = Browser(app)
    page = await browser.get("/register")
    assert page.code == 200
    html = page.body.decode()
    assert re.search(r'<label for="username">Username</label>', html)
    assert re.search(r'<label for="password">Password</label>', html)
    assert ">Register</button>" in html
    response = await browser.post_form("/register", {"username": "alice", "password": PASSWORD})
    assert response.code == 302 and response.headers["Location"] == "/"
    chat = await browser.get("/")
    assert chat.code == 200
    html = chat.body.decode()
    assert ">Message</label>" in html and ">Send</button>" in html and ">Log out</button>" in html


async def test_forms_without_xsrf_are_403(app):
    browser = Browser(app)
    response = await browser.post_form(
        "/register", {"username": "alice", "password": PASSWORD}, xsrf=False
    )
    assert response.code == 403


async def test_login_form_errors_and_success(app):
    await app.api.register("alice")
    browser = Browser(app)
    wrong = await browser.post_form("/login", {"username": "alice", "password": "nope nope"})
    assert wrong.code == 401 and b"wrong username or password" in wrong.body
    ok = await browser.post_form(
        "/login?next=/rooms/lobby", {"username": "alice", "password": PASSWORD}
    )
    assert ok.code == 302 and ok.headers["Location"] == "/rooms/lobby"


async def test_login_never_redirects_off_site(app):
    await app.api.register("alice")
    browser = Browser(app)
    response = await browser.post_form(
        "/login?next=//evil.example/", {"username": "alice", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


async def test_logout_form_ends_the_session(app):
    await app.api.register("alice")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    assert (await browser.get("/")).code == 200
    session = browser.cookies["chatroom_session"]
    await browser.post_form("/logout", {})
    assert (await browser.get("/")).code == 302
    browser.cookies["chatroom_session"] = session  # replaying the old cookie does not work
    assert (await browser.get("/")).code == 302


async def test_room_page_renders_history_as_text(app):
    alice = await app.client("alice")
    await alice.send("<img src=x onerror=alert(1)>")
    await alice.next("ack")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    page = await browser.get("/rooms/lobby")
    html = page.body.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html


async def test_room_pages_404_and_403(app):
    await app.api.register("alice")
    await app.api.register("bob")
    await app.api.register("carol")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "carol", "password": PASSWORD})
    assert (await browser.get("/rooms/nowhere")).code == 404
    assert (await browser.get("/rooms/Bad%20Name")).code == 404
    assert (await browser.get("/rooms/dm:alice:bob")).code == 403
    assert (await browser.get("/rooms/dm:bob:carol")).code == 200


async def test_pages_carry_security_headers(app):
    response = await Browser(app).get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_unknown_page_is_a_404_page(app):
    response = await Browser(app).get("/no/such/page")
    assert response.code == 404 and b"<html" in response.body
