"""Site roles and the audit log (SPEC §6): ``users create --admin``, ``promote``/``demote``,
``chatroom audit`` and ``GET /api/me``, on a real SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
from playhouse import migrate as pw_migrate

from chatroom.models import AuditEntry, User, open_database
from chatroom.models.database import MIGRATIONS, SchemaVersion, database, migrate_schema
from tests.helpers import PASSWORD, body
from tests.test_admin_cli import chatroom


def test_the_first_admin_is_made_from_the_shell_and_logged(tmp_path):
    data_dir = tmp_path / "data"
    made = chatroom(
        data_dir, "users", "create", "Teacher", "--admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert made.exit_code == 0, made.output
    assert made.output == "Created the site admin Teacher\n"
    plain = chatroom(
        data_dir, "users", "create", "pupil", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert plain.output == "Created the user pupil\n"

    users = json.loads(chatroom(data_dir, "users", "list", "--json").output)
    assert [(u["name"], u["role"]) for u in users] == [("pupil", "user"), ("Teacher", "admin")]
    assert "  admin" in chatroom(data_dir, "users", "list").output.splitlines()[1]

    entries = json.loads(chatroom(data_dir, "audit", "--json").output)
    assert [(e["actor"], e["action"], e["target"], e["room"]) for e in entries] == [
        ("(operator)", "promote", "Teacher", None)
    ]


def test_promote_and_demote_change_the_role_once_and_log_each_change(tmp_path):
    data_dir = tmp_path / "data"
    chatroom(data_dir, "users", "create", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert chatroom(data_dir, "users", "promote", "ALICE").output == "alice is now a site admin\n"
    assert (
        chatroom(data_dir, "users", "promote", "alice").output == "alice is already a site admin\n"
    )
    assert chatroom(data_dir, "users", "demote", "alice").output == "alice is now a plain user\n"
    assert (
        chatroom(data_dir, "users", "demote", "alice").output == "alice is already a plain user\n"
    )

    text = chatroom(data_dir, "audit").output.splitlines()
    assert [line.split("  ")[1:] for line in text] == [
        ["(operator)", "demote", "alice"],
        ["(operator)", "promote", "alice"],
    ]
    assert chatroom(data_dir, "audit", "--room", "lobby", "--json").output.strip() == "[]"


@pytest.mark.parametrize(
    "args, message",
    [
        (("users", "promote", "nobody"), "no user 'nobody'"),
        (("users", "demote", "no spaces"), "username must be"),
        (("users", "promote", "x" * 500), "username must be"),
        (("audit", "--room", "bad room!"), "room name must match"),
    ],
)
def test_bad_names_get_a_clear_error_and_change_nothing(tmp_path, args, message):
    data_dir = tmp_path / "data"
    result = chatroom(data_dir, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert json.loads(chatroom(data_dir, "audit", "--json").output) == []


def test_audit_text_escapes_control_characters_in_stored_names(tmp_path, database):
    handle = open_database(database.effective_database_url)
    try:
        AuditEntry.record("mallory\x1b[2J", "kick", "bob\u202e", "general", "spam\r\nforged")
    finally:
        handle.close()
    output = chatroom(database.data_dir, "audit").output
    assert "\x1b" not in output and "\u202e" not in output and output.count("\n") == 1
    assert "mallory\\x1b[2J" in output and "spam\\r\\nforged" in output


def test_a_0_1_database_gains_the_role_column_with_every_user_a_plain_user(tmp_path):
    """Migration 5 on a database made by migrations 1-4 (an older release's schema)."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    handle = open_database(url)
    try:
        migrator = pw_migrate.SchemaMigrator.from_database(handle)
        database.create_tables([SchemaVersion])
        for step in MIGRATIONS[:4]:
            step(handle, migrator)
        pw_migrate.migrate(migrator.drop_column("user", "role"))  # as 0.1 made it
        SchemaVersion.create(id=1, version=4)
        handle.execute_sql(
            "INSERT INTO user (name, name_key, password_hash, created, disabled) "
            "VALUES ('old', 'old', 'x', '2025-01-01 00:00:00', 0)"
        )
        migrate_schema(handle)
        assert SchemaVersion.current() == len(MIGRATIONS)
        assert User.by_name("old").role == "user"
        assert AuditEntry.newest() == []
    finally:
        handle.close()


async def test_api_me_tells_the_caller_their_role(app, tmp_path):
    token = await app.api.user("carol")
    response = await app.api.request("GET", "/api/me", token=token)
    assert response.code == 200
    me = body(response)["user"]
    assert me["name"] == "carol" and me["role"] == "user" and me["created"]

    await asyncio.to_thread(_promote, "carol")
    again = body(await app.api.request("GET", "/api/me", token=token))
    assert again["user"]["role"] == "admin", "the role counts from the next request"

    anonymous = await app.api.request("GET", "/api/me")
    assert anonymous.code == 401 and body(anonymous)["error"]["code"] == "unauthorized"
    forged = await app.api.request("GET", "/api/me", token="x" * 43)
    assert forged.code == 401


def _promote(name: str) -> None:
    User.update(role="admin").where(User.name_key == name).execute()
