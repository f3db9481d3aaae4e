"""[issue 13] The SQL behind re-checking subscriptions after an outage (``access_lost``)
and counting blocked users' mentions (``Block.blockers_of``) on PostgreSQL and
MySQL/MariaDB."""

from __future__ import annotations

from chatroom.models import Block
from chatroom.storage import initialise_database


async def test_access_lost_and_blockers_on_a_sql_server(sql_url, config, app_factory):
    assert initialise_database(config.replace(database_url=sql_url)) is True
    app = await app_factory(database_url=sql_url)
    alice, bob, carol = [await app.api.user(n) for n in ("alice", "bob", "carol")]
    await app.api.request("POST", "/api/rooms", {"name": "club", "private": True}, alice)
    await app.api.request("POST", "/api/rooms/club/members", {"user": "bob"}, alice)
    await app.api.request("POST", "/api/rooms", {"name": "general"}, alice)
    await app.api.request("POST", "/api/rooms/general/bans", {"user": "carol"}, alice)
    await app.api.request("POST", "/api/blocks", {"user": "alice"}, bob)
    await app.api.request("POST", "/api/blocks", {"user": "alice"}, carol)
    controllers = app.server.controllers
    rooms = controllers.rooms
    ids = {n: (await rooms.find_user(n)).id for n in ("alice", "bob", "carol")}
    club = (await rooms.open(await rooms.find_user("alice"), "club")).id
    general = (await rooms.open(await rooms.find_user("alice"), "general")).id
    lost = await rooms.access_lost(
        [
            (ids["alice"], club),
            (ids["bob"], club),
            (ids["carol"], club),
            (ids["carol"], general),
            (ids["bob"], 999_999),
        ]
    )
    assert lost == {
        (ids["carol"], club): "kicked",
        (ids["carol"], general): "banned",
        (ids["bob"], 999_999): "deleted",
    }
    blockers = await controllers.chat.changes.mentions.blockers(ids["alice"])
    assert blockers == {"bob", "carol"}
    assert sorted(await app.server.run_blocking(Block.blockers_of, ids["bob"])) == []
