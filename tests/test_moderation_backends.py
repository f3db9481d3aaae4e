"""Room moderation (SPEC §6) on PostgreSQL and MySQL/MariaDB: private rooms, roles,
timed bans and mutes, read-only, the search scope and the audit log, end to end."""

from __future__ import annotations

import asyncio

from chatroom.storage import initialise_database
from tests.helpers import body


async def test_moderation_on_a_sql_server(sql_url, config, app_factory):
    assert initialise_database(config.replace(database_url=sql_url)) is True
    app = await app_factory(database_url=sql_url)
    api = app.api
    alice, bob, carol = [await api.user(n) for n in ("alice", "bob", "carol")]
    made = await api.request("POST", "/api/rooms", {"name": "club", "private": True}, alice)
    assert made.code == 201 and body(made)["room"]["role"] == "owner"
    assert (await api.request("GET", "/api/rooms/club/members", token=bob)).code == 403
    added = await api.request("POST", "/api/rooms/club/members", {"user": "bob"}, alice)
    assert added.code == 201
    role = await api.request("PUT", "/api/rooms/club/members/bob", {"role": "moderator"}, alice)
    assert body(role)["member"]["role"] == "moderator"
    sent = await api.request("POST", "/api/rooms/club/messages", {"text": "secret plan"}, bob)
    assert sent.code == 201
    await app.server.controllers.archive.archive_once()
    assert body(await api.request("GET", "/api/search?q=secret", token=carol))["results"] == []
    found = body(await api.request("GET", "/api/search?q=secret", token=bob))["results"]
    assert [r["room"] for r in found] == ["club"]

    await api.request("POST", "/api/rooms", {"name": "general"}, alice)
    for name, token in (("bob", bob), ("carol", carol)):
        joined = await api.request("POST", "/api/rooms/general/messages", {"text": "hi"}, token)
        assert joined.code == 201, name
    muted = await api.request(
        "POST", "/api/rooms/general/mutes", {"user": "carol", "seconds": 1}, alice
    )
    assert muted.code == 201
    hush = await api.request("POST", "/api/rooms/general/messages", {"text": "x"}, carol)
    assert hush.code == 403
    members = body(await api.request("GET", "/api/rooms/general/members", token=carol))
    assert [m["muted"] for m in members["members"]] == [False, False, True]
    await asyncio.sleep(1.1)
    back = await api.request("POST", "/api/rooms/general/messages", {"text": "y"}, carol)
    assert back.code == 201
    banned = await api.request("POST", "/api/rooms/general/bans", {"user": "bob"}, alice)
    assert banned.code == 201
    assert (await api.request("GET", "/api/rooms/general/messages", token=bob)).code == 403
    ro = await api.request("PATCH", "/api/rooms/general", {"read_only": True}, alice)
    assert body(ro)["room"]["read_only"] is True
    assert (
        await api.request("POST", "/api/rooms/general/messages", {"text": "z"}, carol)
    ).code == 403
    log = body(await api.request("GET", "/api/rooms/general/audit", token=alice))["entries"]
    assert [e["action"] for e in log] == ["room_settings", "ban", "mute"]
    assert (await api.request("DELETE", "/api/rooms/club", token=alice)).code == 200
