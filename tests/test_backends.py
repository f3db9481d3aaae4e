"""The same chat on PostgreSQL and MySQL/MariaDB (``--database-url``), end to end.

The server URLs come from CHATROOM_TEST_POSTGRESQL_URL / CHATROOM_TEST_MYSQL_URL,
which ``scripts/test`` sets; each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import peewee
import pytest
from playhouse.db_url import connect

from chatroom.storage import initialise_database
from tests.helpers import body, without_epoch


async def test_chat_on_a_sql_server(sql_url, config, app_factory):
    config = config.replace(database_url=sql_url)
    assert initialise_database(config) is True
    assert initialise_database(config) is False  # idempotent
    app = await app_factory(database_url=sql_url)
    assert body(await app.api.request("GET", "/healthz"))["database"] == "ok"
    assert (await app.api.register("Alice")).code == 201
    assert (await app.api.register("ALICE")).code == 409
    alice = await app.client("Alice")
    bob = await app.client("bob")
    token = await app.api.login("bob")
    created = await app.api.request("POST", "/api/rooms", {"name": "general"}, token)
    assert created.code == 201
    await alice.send("hello")
    await alice.next("ack")
    rooms = body(await app.api.request("GET", "/api/rooms", token=token))["rooms"]
    lobby = next(r for r in rooms if r["name"] == "lobby")
    assert (lobby["members"], lobby["unread"], lobby["last_id"]) == (2, 1, 1)
    await bob.join("dm:alice:bob")
    await bob.send("psst", room="dm:alice:bob")
    await bob.next("ack")
    later = await app.client("alice", join=None)
    dm = {"name": "dm:alice:bob", "unread": 1, "last_id": 1, "mentions": 0}
    assert dm | {"private": False, "role": "member"} in without_epoch(later.hello["rooms"])


def test_sql_url_fixture_really_isolates(sql_url):
    db = connect(sql_url)
    with pytest.raises(peewee.DatabaseError):
        db.execute_sql("SELECT * FROM user_that_does_not_exist")
    db.close()
