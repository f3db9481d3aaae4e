"""The room moderation API of SPEC §6 over HTTP: every route's answers and JSON shapes,
and malformed, oversized, hostile and concurrent input for each."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from chatroom.models import User
from tests.helpers import PASSWORD, body

#: (method, path, JSON body) of every moderation route, on room ``general`` and user bob.
ROUTES = [
    ("GET", "/api/rooms/general/members", None),
    ("POST", "/api/rooms/general/members", {"user": "bob"}),
    ("DELETE", "/api/rooms/general/members/bob", None),
    ("PUT", "/api/rooms/general/members/bob", {"role": "moderator"}),
    ("GET", "/api/rooms/general/bans", None),
    ("POST", "/api/rooms/general/bans", {"user": "bob"}),
    ("DELETE", "/api/rooms/general/bans/bob", None),
    ("POST", "/api/rooms/general/mutes", {"user": "bob"}),
    ("DELETE", "/api/rooms/general/mutes/bob", None),
    ("PATCH", "/api/rooms/general", {"topic": "t"}),
    ("DELETE", "/api/rooms/general", None),
    ("GET", "/api/rooms/general/audit", None),
]
WITH_BODY = [route for route in ROUTES if route[2] is not None]


def error_code(response) -> str:
    return body(response)["error"]["code"]


@pytest.fixture
async def room(app):
    """alice owns ``general``; bob is a member; their tokens."""
    alice = await app.api.user("alice")
    bob = await app.api.user("bob")
    created = await app.api.request("POST", "/api/rooms", {"name": "general"}, alice)
    assert created.code == 201
    added = await app.api.request("POST", "/api/rooms/general/members", {"user": "bob"}, alice)
    assert added.code == 201
    return alice, bob


async def test_the_whole_story_over_http(app, room):
    alice, bob = room
    api = app.api
    members = body(await api.request("GET", "/api/rooms/general/members", token=bob))
    assert members == {
        "members": [
            {"name": "alice", "role": "owner", "muted": False, "muted_until": None},
            {"name": "bob", "role": "member", "muted": False, "muted_until": None},
        ],
        "more": False,
    }
    again = await api.request("POST", "/api/rooms/general/members", {"user": "BOB"}, alice)
    assert again.code == 200 and body(again)["member"]["name"] == "bob"
    role = await api.request("PUT", "/api/rooms/general/members/bob", {"role": "moderator"}, alice)
    assert role.code == 200 and body(role)["member"]["role"] == "moderator"
    muted = await api.request(
        "POST", "/api/rooms/general/mutes", {"user": "bob", "seconds": 60}, alice
    )
    assert muted.code == 201
    mute = body(muted)["mute"]
    assert (mute["name"], mute["by"], mute["after_id"]) == ("bob", "alice", 0) and mute["until"]
    sent = await api.request("POST", "/api/rooms/general/messages", {"text": "hi"}, bob)
    assert sent.code == 403 and error_code(sent) == "forbidden"
    lifted = await api.request("DELETE", "/api/rooms/general/mutes/bob", token=alice)
    assert body(lifted) == {"ok": True, "lifted": True}
    patched = await api.request("PATCH", "/api/rooms/general", {"read_only": True}, alice)
    assert body(patched) == {
        "room": {"name": "general", "topic": "", "private": False, "read_only": True}
    }
    carol = await api.user("carol")
    ro = await api.request("POST", "/api/rooms/general/messages", {"text": "hi"}, carol)
    assert ro.code == 403
    banned = await api.request("POST", "/api/rooms/general/bans", {"user": "carol"}, bob)
    assert banned.code == 201 and body(banned)["ban"]["until"] is None
    bans = body(await api.request("GET", "/api/rooms/general/bans", token=alice))
    assert [b["name"] for b in bans["bans"]] == ["carol"]
    history = await api.request("GET", "/api/rooms/general/messages", token=carol)
    assert history.code == 403
    unbanned = await api.request("DELETE", "/api/rooms/general/bans/carol", token=bob)
    assert body(unbanned) == {"ok": True, "lifted": True}
    kicked = await api.request("DELETE", "/api/rooms/general/members/bob", token=alice)
    assert body(kicked) == {"ok": True}
    log = body(await api.request("GET", "/api/rooms/general/audit", token=alice))["entries"]
    assert [e["action"] for e in log] == [
        "kick",
        "unban",
        "ban",
        "room_settings",
        "unmute",
        "mute",
        "role",
        "add_member",
    ]
    deleted = await api.request("DELETE", "/api/rooms/general", token=alice)
    assert body(deleted) == {"ok": True, "room": "general"}
    gone = await api.request("GET", "/api/rooms/general/members", token=alice)
    assert gone.code == 404 and error_code(gone) == "not_found"


@pytest.mark.parametrize("method, path, payload", ROUTES)
async def test_every_route_needs_a_signed_in_user(app, room, method, path, payload):
    response = await app.api.request(method, path, payload)
    assert response.code == 401 and error_code(response) == "unauthorized"
    forged = await app.api.request(method, path, payload, token="x" * 43)
    assert forged.code == 401


@pytest.mark.parametrize("method, path, payload", ROUTES)
async def test_every_route_refuses_a_plain_member_or_a_stranger_with_403(
    app, room, method, path, payload
):
    _, bob = room
    carol = await app.api.user("carol")
    member_may = {("GET", "/api/rooms/general/members")}
    for token in (bob, carol):
        response = await app.api.request(method, path, payload, token)
        if (method, path) in member_may:
            assert response.code == 200
            continue
        if (method, path) == ("DELETE", "/api/rooms/general/members/bob") and token == bob:
            continue  # leaving for good: tested elsewhere
        assert response.code == 403, (method, path, response.body)
        assert error_code(response) == "forbidden"


@pytest.mark.parametrize("method, path, payload", ROUTES)
async def test_unknown_rooms_are_404_and_malformed_names_400(app, room, method, path, payload):
    alice, _ = room
    missing = await app.api.request(method, path.replace("general", "nowhere"), payload, alice)
    assert missing.code == 404 and error_code(missing) == "not_found"
    for bad in ("Bad%20Room", "%00", "x" * 300, quote("général"), "dm%3Aa"):
        response = await app.api.request(method, path.replace("general", bad), payload, alice)
        assert response.code in (400, 404), (bad, response.code)
        assert error_code(response) in ("bad_request", "not_found")


@pytest.mark.parametrize(
    "method, path, payload",
    [route for route in ROUTES if "bob" in route[0] + route[1] + str(route[2])],
)
async def test_unknown_users_are_404_and_malformed_names_400(app, room, method, path, payload):
    alice, _ = room

    def swap(value: str):
        new_path = path.replace("/bob", "/" + value)
        new_payload = None if payload is None else {**payload, "user": value}
        if payload is not None and "user" not in payload:
            new_payload = payload
        return new_path, new_payload

    response = await app.api.request(method, *swap("nobody"), token=alice)
    assert response.code == 404 and error_code(response) == "not_found"
    for bad in ("no%20spaces", "%00", "x" * 40, "a%2Fb", "%E2%80%AEevil"):
        response = await app.api.request(method, *swap(bad), token=alice)
        assert response.code == 400, (bad, response.body)


@pytest.mark.parametrize("method, path, payload", WITH_BODY)
async def test_bodies_that_are_not_a_json_object_are_400(app, room, method, path, payload):
    alice, _ = room
    for raw in (b"", b"{", b"[]", b'"x"', b"null", b"\xff\xfe", b'{"user": "bob"'):
        response = await app.api.request(method, path, token=alice, raw=raw)
        assert response.code == 400, raw
        assert error_code(response) == "bad_request"
    text = await app.api.request(
        method, path, token=alice, raw=b'{"user":"bob"}', headers={"Content-Type": "text/plain"}
    )
    assert text.code == 400


@pytest.mark.parametrize("method, path, payload", WITH_BODY)
async def test_an_oversized_body_is_413(app, room, method, path, payload):
    alice, _ = room
    huge = b'{"user": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await app.api.request(method, path, token=alice, raw=huge)
    assert response.code == 413


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"user": None},
        {"user": 5},
        {"user": ["bob"]},
        {"user": {"name": "bob"}},
        {"user": "bob", "seconds": 0},
        {"user": "bob", "seconds": -5},
        {"user": "bob", "seconds": 1.5},
        {"user": "bob", "seconds": "60"},
        {"user": "bob", "seconds": True},
        {"user": "bob", "seconds": 10**18},
        b'{"user": "bob", "seconds": 1e400}',
        b'{"user": "bob", "seconds": 100000000000000000000000000000}',
        b'{"user": "bob", "seconds": NaN}',
        b'{"user": "bob\\u0000"}',
        b'{"user": "\\ud800"}',
    ],
)
async def test_hostile_ban_and_mute_bodies_are_400_and_change_nothing(app, room, payload):
    alice, bob = room
    raw = payload if isinstance(payload, bytes) else None
    for kind in ("bans", "mutes"):
        path = f"/api/rooms/general/{kind}"
        response = await app.api.request("POST", path, None if raw else payload, alice, raw=raw)
        assert response.code == 400, (kind, payload, response.body)
    sent = await app.api.request("POST", "/api/rooms/general/messages", {"text": "ok"}, bob)
    assert sent.code == 201
    log = body(await app.api.request("GET", "/api/rooms/general/audit", token=alice))
    assert [e["action"] for e in log["entries"]] == ["add_member"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"role": "admin"}, {"role": None}, {"role": 1}, {"role": ["owner"]}, {"role": "OWNER"}],
)
async def test_hostile_role_bodies_are_400(app, room, payload):
    alice, _ = room
    response = await app.api.request("PUT", "/api/rooms/general/members/bob", payload, alice)
    assert response.code == 400


@pytest.mark.parametrize(
    "payload",
    [{}, {"read_only": "true"}, {"read_only": 1}, {"topic": 5}, {"topic": "x" * 201}],
)
async def test_hostile_room_settings_are_400(app, room, payload):
    alice, _ = room
    response = await app.api.request("PATCH", "/api/rooms/general", payload, alice)
    assert response.code == 400


async def test_unknown_query_parameters_and_bad_cursors_are_400(app, room):
    alice, _ = room
    for path in (
        "/api/rooms/general/members?limit=5",
        "/api/rooms/general/members?after=bad%20name",
        "/api/rooms/general/members?after=a&after=b",
        "/api/rooms/general/bans?x=1",
        "/api/rooms/general/audit?before=x",
        "/api/rooms/general/audit?before=-1",
        "/api/rooms/general/audit?before=" + "9" * 30,
    ):
        response = await app.api.request("GET", path, token=alice)
        assert response.code == 400, (path, response.body)


async def test_wrong_methods_are_405_with_allow(app, room):
    alice, _ = room
    for method, path, allowed in (
        ("PUT", "/api/rooms/general", "GET, DELETE, PATCH"),
        ("POST", "/api/rooms/general/mutes/bob", "DELETE"),
        ("PATCH", "/api/rooms/general/members", "GET, POST"),
    ):
        response = await app.api.request(method, path, {} if method != "GET" else None, alice)
        assert response.code == 405 and response.headers["Allow"] == allowed


async def test_a_session_cookie_without_the_xsrf_header_is_403(app, room):
    login = await app.api.request("POST", "/api/login", {"username": "alice", "password": PASSWORD})
    cookie = login.headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("chatroom_session=")
    for method, path, payload in ROUTES:
        if method == "GET":
            continue
        response = await app.api.request(method, path, payload, headers={"Cookie": cookie})
        assert response.code == 403, (method, path)
    members = await app.api.request("GET", "/api/rooms/general/members", headers={"Cookie": cookie})
    assert [m["name"] for m in body(members)["members"]] == ["alice", "bob"]


async def test_concurrent_adds_and_bans_end_consistent(app, room):
    alice, _ = room
    for name in ("dave", "erin"):
        await app.api.user(name)
    adds = await asyncio.gather(
        *(
            app.api.request("POST", "/api/rooms/general/members", {"user": "dave"}, alice)
            for _ in range(8)
        )
    )
    assert sorted(r.code for r in adds) == [200] * 7 + [201]
    flips = []
    for i in range(10):
        method = "POST" if i % 2 == 0 else "DELETE"
        path = "/api/rooms/general/bans" + ("" if method == "POST" else "/erin")
        flips.append(
            app.api.request(method, path, {"user": "erin"} if method == "POST" else None, alice)
        )
    answers = await asyncio.gather(*flips)
    assert all(r.code in (200, 201) for r in answers), [(r.code, r.body) for r in answers]
    # Whatever order they ran in, SQL and the enforced rules agree.
    bans = body(await app.api.request("GET", "/api/rooms/general/bans", token=alice))["bans"]
    erin = await app.api.login("erin")
    sent = await app.api.request("POST", "/api/rooms/general/messages", {"text": "x"}, erin)
    assert (sent.code == 403) == any(b["name"] == "erin" for b in bans)


async def test_site_admin_role_is_read_per_request(app, room):
    _, bob = room
    carol = await app.api.user("carol")
    refused = await app.api.request("DELETE", "/api/rooms/general/members/bob", token=carol)
    assert refused.code == 403
    await asyncio.to_thread(
        lambda: User.update(role="admin").where(User.name_key == "carol").execute()
    )
    kicked = await app.api.request("DELETE", "/api/rooms/general/members/bob", token=carol)
    assert kicked.code == 200
    assert bob
