"""The site admin page and its JSON routes over HTTP (SPEC §6): who may open them, bad
input, and what a disable does to the user's sockets."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import PASSWORD, Browser, body


def error_code(response) -> str:
    return body(response)["error"]["code"]


@pytest.fixture
async def site(app):
    """The app with a site admin ``teacher`` and a plain user ``pupil``."""
    await app.server.controllers.admin.create_user("teacher", PASSWORD, admin=True)
    app.admin = await app.api.login("teacher")
    app.pupil = await app.api.user("pupil")
    return app


async def test_the_page_is_for_site_admins(site):
    stranger = await Browser(site).get("/admin")
    assert stranger.code == 302 and stranger.headers["Location"] == "/login?next=%2Fadmin"
    pupil = Browser(site)
    await pupil.post_form("/login", {"username": "pupil", "password": PASSWORD})
    refused = await pupil.get("/admin")
    assert refused.code == 403 and 'data-code="forbidden"' in refused.body.decode()
    assert 'href="/admin"' not in (await pupil.get("/")).body.decode()
    teacher = Browser(site)
    await teacher.post_form("/login", {"username": "teacher", "password": PASSWORD})
    page = await teacher.get("/admin")
    html = page.body.decode()
    assert page.code == 200 and 'id="users"' in html and 'id="invite-form"' in html
    assert 'href="/admin"' in (await teacher.get("/")).body.decode()
    strings = json.loads(
        re.search(r'<script type="application/json" id="i18n">(.*?)</script>', html, re.S).group(1)
    )
    assert strings["revoke"] == "Revoke" and strings["errors"]["forbidden"]
    chinese = await teacher.get("/admin", headers={"Accept-Language": "zh-CN"})
    assert "站点管理" in chinese.body.decode()


async def test_users_list_and_changes(site):
    users = body(await site.api.request("GET", "/api/admin/users", token=site.admin))["users"]
    assert [(u["name"], u["role"], u["disabled"]) for u in users] == [
        ("pupil", "user", False),
        ("teacher", "admin", False),
    ]
    promoted = await site.api.request(
        "PATCH", "/api/admin/users/PUPIL", {"role": "admin"}, site.admin
    )
    assert promoted.code == 200 and body(promoted)["user"]["role"] == "admin"
    me = body(await site.api.request("GET", "/api/me", token=site.pupil))["user"]
    assert me["role"] == "admin", "the new role counts from the next request"
    demoted = await site.api.request(
        "PATCH", "/api/admin/users/pupil", {"role": "user"}, site.admin
    )
    assert body(demoted)["user"]["role"] == "user"
    audit = await site.server.controllers.admin.audit()
    assert [(e.actor, e.action, e.target) for e in audit][:2] == [
        ("teacher", "demote", "pupil"),
        ("teacher", "promote", "pupil"),
    ]


async def test_disabling_closes_the_users_sockets_and_sessions(site):
    pupil = await site.client("pupil")
    disabled = await site.api.request(
        "PATCH", "/api/admin/users/pupil", {"disabled": True}, site.admin
    )
    assert disabled.code == 200 and body(disabled)["user"]["disabled"] is True
    assert body(disabled)["user"]["sessions"] == 0
    while await pupil.ws.read_message() is not None:
        pass  # frames until the server closes it
    assert pupil.ws.close_code == 1008
    assert (await site.api.request("GET", "/api/me", token=site.pupil)).code == 401
    refused = await site.api.request(
        "POST", "/api/login", {"username": "pupil", "password": PASSWORD}
    )
    assert refused.code == 401
    enabled = await site.api.request(
        "PATCH", "/api/admin/users/pupil", {"disabled": False}, site.admin
    )
    assert body(enabled)["user"]["disabled"] is False
    assert (
        await site.api.request("POST", "/api/login", {"username": "pupil", "password": PASSWORD})
    ).code == 200


@pytest.mark.parametrize(
    "path, payload, raw, status",
    [
        ("/api/admin/users/pupil", None, b"{oops", 400),
        ("/api/admin/users/pupil", None, b"[]", 400),
        ("/api/admin/users/pupil", {}, None, 400),
        ("/api/admin/users/pupil", {"disabled": "true"}, None, 400),
        ("/api/admin/users/pupil", {"disabled": 0}, None, 400),
        ("/api/admin/users/pupil", {"role": "owner"}, None, 400),
        ("/api/admin/users/pupil", {"role": None, "disabled": None}, None, 400),
        ("/api/admin/users/nobody", {"disabled": True}, None, 404),
        ("/api/admin/users/bad%20name", {"disabled": True}, None, 400),
        ("/api/admin/users/" + "x" * 3000, {"role": "admin"}, None, 400),
        ("/api/admin/users/teacher", {"disabled": True}, None, 403),
        ("/api/admin/users/TEACHER", {"role": "user"}, None, 403),
    ],
)
async def test_bad_changes(site, path, payload, raw, status):
    response = await site.api.request("PATCH", path, payload, site.admin, raw=raw)
    assert response.code == status, response.body
    assert "error" in body(response)
    users = body(await site.api.request("GET", "/api/admin/users", token=site.admin))["users"]
    assert [(u["role"], u["disabled"]) for u in users] == [("user", False), ("admin", False)]


async def test_non_admins_and_strangers_are_refused(site):
    for method, path, payload in [
        ("GET", "/api/admin/users", None),
        ("PATCH", "/api/admin/users/teacher", {"disabled": True}),
        ("PATCH", "/api/admin/users/pupil", {"role": "admin"}),
    ]:
        refused = await site.api.request(method, path, payload, site.pupil)
        assert (refused.code, error_code(refused)) == (403, "forbidden")
        stranger = await site.api.request(method, path, payload)
        assert (stranger.code, error_code(stranger)) == (401, "unauthorized")
    garbage = await site.api.request(
        "PATCH", "/api/admin/users/teacher", None, site.pupil, raw=b"{"
    )
    assert garbage.code == 403, "a non-admin's body is not even read"
    for method, payload in (("POST", {}), ("DELETE", None), ("PUT", {})):
        wrong = await site.api.request(method, "/api/admin/users/pupil", payload, site.admin)
        assert wrong.code == 405


async def test_a_demoted_admin_loses_the_page_at_the_next_request(site):
    await site.server.controllers.admin.create_user("helper", PASSWORD, admin=True)
    helper = await site.api.login("helper")
    assert (await site.api.request("GET", "/api/admin/users", token=helper)).code == 200
    await site.api.request("PATCH", "/api/admin/users/helper", {"role": "user"}, site.admin)
    assert (await site.api.request("GET", "/api/admin/users", token=helper)).code == 403
