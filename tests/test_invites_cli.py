"""``chatroom invites create|list|revoke`` (SPEC §6) through CliRunner on a real SQLite
file, and a code made there registering an account on a running server."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import PASSWORD
from tests.test_admin_cli import chatroom, in_thread, json_of


def test_create_list_and_revoke(tmp_path):
    data_dir = tmp_path / "data"
    made = chatroom(data_dir, "invites", "create", "--uses", "3", "--seconds", "3600")
    assert made.exit_code == 0, made.output
    lines = made.output.splitlines()
    assert re.fullmatch(r"Created the invite #1: 3 uses until \S+\+00:00", lines[0])
    code = re.fullmatch(r"Code: ([A-Za-z0-9_-]{24})", lines[1]).group(1)
    assert lines[2] == f"Link: <the chat address>/register?invite={code}"

    linked = json_of(
        chatroom(data_dir, "invites", "create", "--url", "https://chat.example.org/", "--json")
    )
    assert linked["url"] == f"https://chat.example.org/register?invite={linked['code']}"
    assert (linked["uses"], linked["state"], linked["created_by"]) == (1, "active", "(operator)")

    listed = chatroom(data_dir, "invites", "list")
    assert listed.exit_code == 0
    assert [line.split("  ")[0] for line in listed.output.splitlines()] == ["#2", "#1"]
    assert code not in listed.output and linked["code"] not in listed.output
    assert "0 of 3 used" in listed.output and listed.output.count("active") == 2

    revoked = chatroom(data_dir, "invites", "revoke", "1")
    assert revoked.output == f"Revoked the invite #1 ({code[:4]}…)\n"
    states = [i["state"] for i in json_of(chatroom(data_dir, "invites", "list", "--json"))]
    assert states == ["active", "revoked"]

    entries = json_of(chatroom(data_dir, "audit", "--json"))
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("(operator)", "invite_revoke"),
        ("(operator)", "invite_create"),
        ("(operator)", "invite_create"),
    ]


@pytest.mark.parametrize(
    "args, message, code",
    [
        (("invites", "revoke", "7"), "no invite 7", 1),
        (("invites", "revoke", "abc"), "an invite id is a positive whole number", 1),
        (("invites", "revoke", "0"), "an invite id is a positive whole number", 1),
        (("invites", "revoke", "9" * 40), "an invite id is a positive whole number", 1),
        (("invites", "create", "--uses", "0"), "Invalid value for '--uses'", 2),
        (("invites", "create", "--uses", "1001"), "Invalid value for '--uses'", 2),
        (("invites", "create", "--seconds", "0"), "Invalid value for '--seconds'", 2),
        (("invites", "create", "--seconds", "x"), "Invalid value for '--seconds'", 2),
    ],
)
def test_bad_arguments(tmp_path, args, message, code):
    result = chatroom(tmp_path / "data", *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert json_of(chatroom(tmp_path / "data", "invites", "list", "--json")) == []


async def test_a_code_from_the_shell_registers_on_a_running_server(app_factory, database):
    app = await app_factory(registration="invite")
    made = await in_thread(database.data_dir, "invites", "create", "--json")
    code = json_of(made)["code"]
    fields = {"username": "ann", "password": PASSWORD, "invite": code}
    assert (await app.api.request("POST", "/api/register", fields)).code == 201
    fields["username"] = "ben"
    assert (await app.api.request("POST", "/api/register", fields)).code == 403
    listed = json.loads((await in_thread(database.data_dir, "invites", "list", "--json")).stdout)
    assert [(i["used"], i["state"]) for i in listed] == [(1, "used_up")]


def test_disable_and_enable_from_the_shell_are_audited_once_each(tmp_path):
    data_dir = tmp_path / "data"
    chatroom(data_dir, "users", "create", "mallory", "--password-stdin", stdin=PASSWORD + "\n")
    for _ in range(2):
        assert chatroom(data_dir, "users", "disable", "mallory").exit_code == 0
    for _ in range(2):
        assert chatroom(data_dir, "users", "enable", "mallory").exit_code == 0
    entries = json_of(chatroom(data_dir, "audit", "--json"))
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("(operator)", "enable", "mallory"),
        ("(operator)", "disable", "mallory"),
    ]
