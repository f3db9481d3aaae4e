"""``GET /api/users?prefix=``: the username lookup behind the room settings panel's
add-member autocomplete, with malformed, hostile, oversized and concurrent input."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from chatroom.models import User
from tests.helpers import body


async def names(app, prefix: str, token: str) -> list[str]:
    response = await app.api.request("GET", "/api/users?prefix=" + quote(prefix), token=token)
    assert response.code == 200, response.body
    return body(response)["users"]


async def test_names_by_prefix_any_case_in_order(app):
    token = await app.api.user("alice")
    for name in ("Bob", "bobby", "bo_x", "carol"):
        await app.api.user(name)
    assert await names(app, "bo", token) == ["bo_x", "Bob", "bobby"]
    assert await names(app, "BOB", token) == ["Bob", "bobby"]
    assert await names(app, "z", token) == []


async def test_like_wildcards_are_letters(app):
    token = await app.api.user("alice")
    await app.api.user("abc")
    # "_" and "." are username characters; "_" must not match any character in SQL.
    assert await names(app, "a_c", token) == []
    assert await names(app, "a.", token) == []


async def test_at_most_ten_and_disabled_accounts_left_out(app):
    token = await app.api.user("alice")
    for i in range(12):
        await app.api.user(f"user{i:02d}")
    found = await names(app, "user", token)
    assert found == [f"user{i:02d}" for i in range(10)]
    User.update(disabled=True).where(User.name_key == "user00").execute()
    assert (await names(app, "user0", token))[0] == "user01"


async def test_signed_out_is_refused(app):
    response = await app.api.request("GET", "/api/users?prefix=a")
    assert response.code == 401


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?prefix=",
        "?prefix=" + "a" * 33,
        "?prefix=a%25",
        "?prefix=%27%20OR%201%3D1--",
        "?prefix=%E4%B8%AD",
        "?prefix=%FF",
        "?prefix=a&prefix=b",
        "?prefix=a&other=1",
    ],
)
async def test_malformed_prefixes_are_bad_requests(app, query):
    token = await app.api.user("alice")
    response = await app.api.request("GET", "/api/users" + query, token=token)
    assert response.code == 400, (query, response.body)
    assert body(response)["error"]["code"] == "bad_request"


async def test_concurrent_lookups_agree(app):
    token = await app.api.user("alice")
    await app.api.user("bob")
    results = await asyncio.gather(*(names(app, "b", token) for _ in range(20)))
    assert all(found == ["bob"] for found in results)
