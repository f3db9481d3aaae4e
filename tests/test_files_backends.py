"""Files on PostgreSQL and MySQL/MariaDB (issue 15): the ``file`` migration, also onto a
0.1 database, and the whole upload -> send -> serve -> release path on each."""

from __future__ import annotations

from playhouse import migrate as pw_migrate

from chatroom.models import open_database
from chatroom.models.database import MIGRATIONS, SchemaVersion, migrate_schema
from chatroom.models.files import File
from chatroom.storage import initialise_database
from tests.files_helpers import png, uploaded


def test_a_0_1_database_gains_the_file_table(sql_url):
    db = open_database(sql_url)
    try:
        # A database as 0.1 left it: the first migration only.
        db.create_tables([SchemaVersion])
        MIGRATIONS[0](db, pw_migrate.SchemaMigrator.from_database(db))
        SchemaVersion.create(id=1, version=1)
        assert not db.table_exists("file")
        migrate_schema(db)
        assert db.table_exists("file") and SchemaVersion.get_by_id(1).version == len(MIGRATIONS)
        assert File.totals() == (0, 0)
    finally:
        db.close()


async def test_files_on_a_sql_server(sql_url, config, app_factory):
    initialise_database(config.replace(database_url=sql_url))
    app = await app_factory(database_url=sql_url)
    alice = await app.client("alice")
    token = await app.api.login("alice")
    first = await uploaded(app, token, png(500, 400), "a.png")
    second = await uploaded(app, token, png(500, 400), "b.png")
    await alice.send_frame(
        {"type": "send", "room": "lobby", "text": "", "files": [first["id"]], "client_id": "c"}
    )
    assert (await alice.answer())["type"] == "ack"
    await alice.send_frame({"type": "send", "room": "lobby", "text": "", "files": [first["id"]]})
    assert (await alice.answer())["code"] == "conflict"
    assert (await app.api.request("GET", first["url"], token=token)).code == 200
    files = app.server.chat.files
    assert await files.totals() == (2, first["size"] + second["size"])
    assert await files.release([first["id"]]) == 1
    assert len(list(files.storage.objects())) == 2  # still used by the second upload
    report = await files.gc(0)
    assert report.files == 1 and list(files.storage.objects()) == []
