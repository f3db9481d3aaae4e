"""[issue 13] Per-user rate limits on blocking (``POST /api/blocks``), making invites
(``POST /api/invites``) and the moderation routes that change something: a Redis token
bucket each, shared by every process; past it, 429 ``rate_limited`` with ``Retry-After``,
counted before any lookup, and exact under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.controllers.limits import BLOCKS_LIMIT, INVITES_LIMIT, MODERATION_LIMIT
from tests.helpers import PASSWORD, body

pytestmark = pytest.mark.timeout(120)


def refused(response) -> int:
    """The Retry-After of a 429 ``rate_limited`` answer."""
    assert response.code == 429, response.body
    assert body(response)["error"]["code"] == "rate_limited"
    return int(response.headers["Retry-After"])


async def test_blocks_per_user_are_limited(app) -> None:
    alice = await app.api.user("alice")
    await app.api.user("bob")
    burst, per_hour = BLOCKS_LIMIT
    for _ in range(burst):  # blocking the same user again counts too
        response = await app.api.request("POST", "/api/blocks", {"user": "bob"}, alice)
        assert response.code in (200, 201), response.body
    wait = refused(await app.api.request("POST", "/api/blocks", {"user": "bob"}, alice))
    assert 1 <= wait <= 3600 // per_hour + 1
    # Counted before the user is looked up: an unknown or hostile name is refused alike.
    for hostile in ("nobody", "x" * 5000, None):
        refused(await app.api.request("POST", "/api/blocks", {"user": hostile}, alice))
    # Unblocking and listing are not limited, and someone else still blocks.
    assert (await app.api.request("DELETE", "/api/blocks/bob", token=alice)).code == 200
    assert (await app.api.request("GET", "/api/blocks", token=alice)).code == 200
    carol = await app.api.user("carol")
    assert (await app.api.request("POST", "/api/blocks", {"user": "bob"}, carol)).code == 201


async def test_invites_per_admin_are_limited_but_not_the_operator(app) -> None:
    await app.server.controllers.admin.create_user("teacher", PASSWORD, admin=True)
    teacher = await app.api.login("teacher")
    burst, _ = INVITES_LIMIT
    answers = await asyncio.gather(
        *(app.api.request("POST", "/api/invites", {}, teacher) for _ in range(burst + 5))
    )
    assert sorted(r.code for r in answers) == [201] * burst + [429] * 5
    refused(next(r for r in answers if r.code == 429))
    # A non-admin is refused as before (403), not counted into anyone's bucket.
    mallory = await app.api.user("mallory")
    assert (await app.api.request("POST", "/api/invites", {}, mallory)).code == 403
    # The operator's shell is not limited.
    made = await app.server.controllers.signup.create_invite(None)
    assert made.code


async def test_moderation_changes_are_limited_exactly_under_concurrency(app) -> None:
    alice = await app.api.user("alice")
    await app.api.user("bob")
    assert (await app.api.request("POST", "/api/rooms", {"name": "club"}, alice)).code == 201
    burst, _ = MODERATION_LIMIT
    extra = 15
    mute = {"user": "bob", "seconds": 60}
    answers = await asyncio.gather(
        *(
            app.api.request("POST", "/api/rooms/club/mutes", mute, alice)
            for _ in range(burst + extra)
        )
    )
    codes = [r.code for r in answers]
    assert codes.count(429) == extra and set(codes) <= {200, 201, 429}, codes
    # Every changing route shares the bucket, and counts before the room is looked up.
    for method, path, data in [
        ("POST", "/api/rooms/club/members", {"user": "bob"}),
        ("POST", "/api/rooms/club/bans", {"user": "bob"}),
        ("DELETE", "/api/rooms/club/mutes/bob", None),
        ("DELETE", "/api/rooms/club/bans/bob", None),
        ("PUT", "/api/rooms/club/members/bob", {"role": "moderator"}),
        ("DELETE", "/api/rooms/club/members/bob", None),
        ("PATCH", "/api/rooms/club", {"read_only": True}),
        ("DELETE", "/api/rooms/club", None),
        ("POST", "/api/rooms/nowhere/mutes", {"user": "bob"}),
    ]:
        refused(await app.api.request(method, path, data, alice))
    # Reading is not limited; bob (another user) still acts on his own account.
    assert (await app.api.request("GET", "/api/rooms/club/members", token=alice)).code == 200
    assert (await app.api.request("GET", "/api/rooms/club/audit", token=alice)).code == 200
    bob = await app.api.login("bob")
    left = await app.api.request("DELETE", "/api/rooms/club/members/bob", token=bob)
    assert left.code in (200, 404), left.body
    assert left.code != 429
