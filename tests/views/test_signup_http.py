"""Sign-up control over HTTP (SPEC §6): ``POST /api/register`` and the ``/register``
form under ``--registration open|invite|closed``, and the invites API of site admins."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers import PASSWORD, Browser, body


async def register(app, name: str, invite: object = None, **extra):
    fields = {"username": name, "password": PASSWORD, **extra}
    if invite is not None:
        fields["invite"] = invite
    return await app.api.request("POST", "/api/register", fields)


def error_code(response) -> str:
    return body(response)["error"]["code"]


async def new_invite(app, token: str, **fields) -> dict:
    response = await app.api.request("POST", "/api/invites", fields, token)
    assert response.code == 201, response.body
    return body(response)


@pytest.fixture
async def invite_app(app_factory):
    """A server with --registration invite and one site admin made from the shell."""
    app = await app_factory(registration="invite")
    await app.server.controllers.admin.create_user("teacher", PASSWORD, admin=True)
    app.admin = await app.api.login("teacher")
    return app


async def test_registering_by_invite(invite_app):
    app = invite_app
    for invite in (None, "", "Zt9aQw3rXb7LmN2pKc5vYh8e", "x" * 100_000):
        refused = await register(app, "ann", invite)
        assert (refused.code, error_code(refused)) == (403, "forbidden"), invite
    for invite in (5, ["code"], {"a": 1}, True):
        refused = await register(app, "ann", invite)
        assert (refused.code, error_code(refused)) == (400, "bad_request")
    made = await new_invite(app, app.admin)
    assert set(made) >= {"code", "url", "expires", "id"}
    made_user = await register(app, "ann", made["code"])
    assert made_user.code == 201 and body(made_user)["user"]["name"] == "ann"
    used = await register(app, "ben", made["code"])
    assert (used.code, error_code(used)) == (403, "forbidden")
    assert (
        await app.api.request("POST", "/api/login", {"username": "ann", "password": PASSWORD})
    ).code == 200


async def test_two_concurrent_registrations_with_a_one_use_code(invite_app):
    app = invite_app
    code = (await new_invite(app, app.admin))["code"]
    answers = await asyncio.gather(*(register(app, f"racer{i}", code) for i in range(4)))
    assert sorted(a.code for a in answers) == [201, 403, 403, 403]


async def test_closed_registration(app_factory):
    app = await app_factory(registration="closed")
    refused = await register(app, "ann")
    assert (refused.code, error_code(refused)) == (403, "forbidden")
    browser = Browser(app)
    page = (await browser.get("/register")).body.decode()
    assert 'data-registration="closed"' in page and 'name="password"' not in page
    login = (await browser.get("/login")).body.decode()
    assert 'href="/register"' not in login, "the login page does not offer registering"
    posted = await browser.post_form("/register", {"username": "ann", "password": PASSWORD})
    assert posted.code == 403 and "Registration is closed" in posted.body.decode()
    # The operator still makes accounts.
    await app.server.controllers.admin.create_user("ann", PASSWORD)
    assert (
        await browser.post_form("/login", {"username": "ann", "password": PASSWORD})
    ).code == 302


async def test_open_registration_is_unchanged(app):
    assert (await register(app, "ann")).code == 201
    assert (await register(app, "ben", "any-invite-at-all")).code == 201
    login = (await Browser(app).get("/login")).body.decode()
    assert 'href="/register"' in login and 'name="invite"' not in login
    page = (await Browser(app).get("/register?invite=abc")).body.decode()
    assert 'name="invite"' not in page


async def test_the_register_form_carries_the_invite(invite_app):
    app = invite_app
    made = await new_invite(app, app.admin)
    browser = Browser(app)
    path = urlsplit(made["url"]).path + "?" + urlsplit(made["url"]).query
    page = (await browser.get(path)).body.decode()
    assert f'name="invite" value="{made["code"]}"' in page
    assert "Your invite is valid until" in page
    posted = await browser.post_form(
        "/register", {"username": "ann", "password": PASSWORD, "invite": made["code"]}
    )
    assert posted.code == 302 and posted.headers["Location"] == "/"
    again = await Browser(app).get(path)
    assert "This one is unknown, used up, expired or revoked" in again.body.decode()


@pytest.mark.parametrize(
    "lang, text",
    [
        (None, "Registering needs a valid invite code."),
        ("zh-CN", "注册需要有效的邀请码。"),
    ],
)
async def test_the_form_says_why_it_refused_in_the_readers_language(invite_app, lang, text):
    browser = Browser(invite_app)
    headers = {"Accept-Language": lang} if lang else {}
    page = await browser.get("/register", headers=headers)
    assert 'name="invite" value=""' in page.body.decode()
    await browser.get("/login")  # the XSRF cookie
    fields = {"username": "ann", "password": PASSWORD, "invite": "Zt9aQw3rXb7LmN2pKc5vYh8e"}
    refused = await browser.post_form("/register", fields, headers=headers)
    html = refused.body.decode()
    assert refused.code == 403 and text in html
    assert 'role="alert" data-code="forbidden"' in html
    assert 'value="Zt9aQw3rXb7LmN2pKc5vYh8e"' in html and 'value="ann"' in html


async def test_a_hostile_invite_in_the_url_is_escaped(invite_app):
    page = await Browser(invite_app).get('/register?invite="><script>alert(1)</script>')
    html = page.body.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


async def test_the_invites_api_for_site_admins(invite_app):
    app = invite_app
    made = await new_invite(app, app.admin, uses=3, seconds=3600)
    url = urlsplit(made["url"])
    assert url.netloc == urlsplit(app.base_url).netloc and url.path == "/register"
    assert parse_qs(url.query) == {"invite": [made["code"]]}
    assert (made["uses"], made["used"], made["state"]) == (3, 0, "active")
    listed = body(await app.api.request("GET", "/api/invites", token=app.admin))
    assert listed["registration"] == "invite"
    (entry,) = listed["invites"]
    assert entry["id"] == made["id"] and entry["prefix"] == made["code"][:4]
    assert made["code"] not in str(listed), "the code is shown once, at creation"
    revoked = await app.api.request("DELETE", f"/api/invites/{made['id']}", token=app.admin)
    assert revoked.code == 200 and body(revoked)["invite"]["state"] == "revoked"
    assert (await register(app, "ann", made["code"])).code == 403


@pytest.mark.parametrize(
    "method, path, payload, raw, status",
    [
        ("POST", "/api/invites", None, b"{not json", 400),
        ("POST", "/api/invites", None, b"[1, 2]", 400),
        ("POST", "/api/invites", {"uses": "3"}, None, 400),
        ("POST", "/api/invites", {"uses": 0}, None, 400),
        ("POST", "/api/invites", {"uses": 10**6}, None, 400),
        ("POST", "/api/invites", {"seconds": -5}, None, 400),
        ("POST", "/api/invites", {"seconds": 1.5}, None, 400),
        ("POST", "/api/invites", {"seconds": None, "uses": None}, None, 201),
        ("POST", "/api/invites", {"uses": 1, "junk": "x" * 1000}, None, 201),
        ("POST", "/api/invites", None, b'{"uses": ' + b"9" * 5000 + b"}", 400),
        ("DELETE", "/api/invites/999", None, None, 404),
        ("DELETE", "/api/invites/0", None, None, 400),
        ("DELETE", "/api/invites/abc", None, None, 400),
        ("DELETE", "/api/invites/" + "9" * 40, None, None, 400),
        ("PUT", "/api/invites", {}, None, 405),
        ("GET", "/api/invites/1", None, None, 405),
    ],
)
async def test_bad_input_to_the_invites_api(invite_app, method, path, payload, raw, status):
    response = await invite_app.api.request(method, path, payload, invite_app.admin, raw=raw)
    assert response.code == status, response.body
    if status != 201:
        assert "error" in body(response)


async def test_an_oversized_invites_body_is_413(app_factory):
    app = await app_factory(registration="invite", max_body_bytes=1024)
    await app.server.controllers.admin.create_user("teacher", PASSWORD, admin=True)
    token = await app.api.login("teacher")
    response = await app.api.request(
        "POST", "/api/invites", None, token, raw=b'{"uses": 1, "x": "' + b"a" * 4000 + b'"}'
    )
    assert response.code == 413 and error_code(response) == "too_large"


async def test_non_admins_and_strangers_may_not_touch_invites(invite_app):
    app = invite_app
    made = await new_invite(app, app.admin)
    await app.server.controllers.admin.create_user("pupil", PASSWORD)
    pupil = await app.api.login("pupil")
    for method, path, payload in [
        ("GET", "/api/invites", None),
        ("POST", "/api/invites", {"uses": 5}),
        ("DELETE", f"/api/invites/{made['id']}", None),
    ]:
        refused = await app.api.request(method, path, payload, pupil)
        assert (refused.code, error_code(refused)) == (403, "forbidden")
        stranger = await app.api.request(method, path, payload)
        assert (stranger.code, error_code(stranger)) == (401, "unauthorized")
    # A non-admin's malformed body is still a 403: the body is not looked at.
    raw = await app.api.request("POST", "/api/invites", None, pupil, raw=b"{oops")
    assert raw.code == 403
    assert [
        i["state"]
        for i in body(await app.api.request("GET", "/api/invites", token=app.admin))["invites"]
    ] == ["active"]


async def test_a_cookie_session_needs_the_xsrf_header(invite_app):
    browser = Browser(invite_app)
    await browser.post_form("/login", {"username": "teacher", "password": PASSWORD})
    cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    refused = await invite_app.api.request("POST", "/api/invites", {}, headers={"Cookie": cookies})
    assert refused.code == 403
    allowed = await invite_app.api.request(
        "POST",
        "/api/invites",
        {},
        headers={"Cookie": cookies, "X-XSRFToken": browser.cookies["_xsrf"]},
    )
    assert allowed.code == 201 and re.match(r"^[A-Za-z0-9_-]{24}$", body(allowed)["code"])
