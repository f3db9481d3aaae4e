"""``GET /api/rooms/<r>``: a room's settings and the caller's standing, for the room
settings panel; who may read it, and malformed or hostile names."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from chatroom.models import User
from tests.helpers import body


async def get(app, room: str, token: str | None):
    return await app.api.request("GET", "/api/rooms/" + quote(room, safe=""), token=token)


async def test_owner_moderator_member_and_outsider(app):
    api = app.api
    alice, bob, carol = await api.user("alice"), await api.user("bob"), await api.user("carol")
    assert (
        await api.request("POST", "/api/rooms", {"name": "team", "topic": "t"}, alice)
    ).code == 201
    await api.request("POST", "/api/rooms/team/members", {"user": "bob"}, alice)
    owner = body(await get(app, "team", alice))["room"]
    assert owner == {
        "name": "team",
        "topic": "t",
        "private": False,
        "read_only": False,
        "role": "owner",
        "level": "owner",
    }
    await api.request("PUT", "/api/rooms/team/members/bob", {"role": "moderator"}, alice)
    await api.request("PATCH", "/api/rooms/team", {"read_only": True}, alice)
    moderator = body(await get(app, "team", bob))["room"]
    assert (moderator["role"], moderator["level"], moderator["read_only"]) == (
        "moderator",
        "moderator",
        True,
    )
    outsider = body(await get(app, "team", carol))["room"]
    assert (outsider["role"], outsider["level"]) == (None, None)


async def test_private_rooms_and_bans_answer_forbidden(app):
    api = app.api
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.request("POST", "/api/rooms", {"name": "hidden", "private": True}, alice)
    refused = await get(app, "hidden", bob)
    assert refused.code == 403 and body(refused)["error"]["code"] == "forbidden"
    await api.request("POST", "/api/rooms", {"name": "open"}, alice)
    await api.request("POST", "/api/rooms/open/bans", {"user": "bob"}, alice)
    assert (await get(app, "open", bob)).code == 403


async def test_site_admin_moderates_public_rooms_as_owner(app):
    api = app.api
    alice = await api.user("alice")
    await api.user("root")
    User.update(role="admin").where(User.name_key == "root").execute()
    root = await api.login("root")
    await api.request("POST", "/api/rooms", {"name": "open"}, alice)
    room = body(await get(app, "open", root))["room"]
    assert (room["role"], room["level"]) == (None, "owner")
    assert body(await get(app, "lobby", root))["room"]["level"] == "owner"


@pytest.mark.parametrize(
    ("room", "code"),
    [("nope", 404), ("UPPER", 400), ("a" * 65, 400), ("x'; drop table room;--", 400)],
)
async def test_unknown_and_malformed_rooms(app, room, code):
    token = await app.api.user("alice")
    response = await get(app, room, token)
    assert response.code == code, response.body


async def test_signed_out_and_concurrent(app):
    assert (await get(app, "lobby", None)).code == 401
    token = await app.api.user("alice")
    answers = await asyncio.gather(*(get(app, "lobby", token) for _ in range(20)))
    assert {a.code for a in answers} == {200}
