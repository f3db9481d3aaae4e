"""The operator commands (``chatroom rooms|users|history|stats``) through CliRunner: on a
data directory no server uses, and beside a real ``chatroom serve`` on the same one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from chatroom.cli import main
from chatroom.datadir import DataDirectory
from tests.helpers import PASSWORD, ChatClient, body, connect
from tests.processes import process_alive, redis_pid

OPERATOR_COMMANDS = [
    ("rooms", "list"),
    ("rooms", "create"),
    ("rooms", "delete"),
    ("users", "list"),
    ("users", "create"),
    ("users", "set-password"),
    ("users", "disable"),
    ("users", "enable"),
    ("users", "promote"),
    ("users", "demote"),
    ("history",),
    ("audit",),
    ("import",),
    ("stats",),
]


def command(path: tuple[str, ...]) -> click.Command:
    found: click.Command = main
    for name in path:
        found = found.commands[name]
    return found


def chatroom(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    """Run ``chatroom ARGS --data-dir DATA_DIR`` in this process."""
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)], input=stdin)


async def in_thread(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    """``chatroom`` from an async test: it runs its own event loop, so off this one."""
    return await asyncio.to_thread(chatroom, data_dir, *args, stdin=stdin)


def redis_servers_on(data_dir: Path) -> list[int]:
    """The pids of live processes started with ``DATA_DIR/redis.sock`` on their command line."""
    socket_path = str(data_dir / "redis.sock").encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if socket_path in cmdline.read_bytes() and process_alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass  # exited meanwhile
    return found


def json_of(result: Result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_lines_of(result: Result) -> list:
    """``history --json``: one JSON object per line (JSON lines)."""
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("path", OPERATOR_COMMANDS, ids=" ".join)
def test_every_operator_command_has_help_and_the_storage_options_of_serve(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    params = {p.name: p for p in command(path).params}
    for name in ("data_dir", "database_url", "redis_url", "redis_prefix"):
        assert params[name].envvar == "CHATROOM_" + name.upper()
        assert "CHATROOM_" + name.upper() in result.output
    for param in params.values():
        if isinstance(param, click.Option):
            assert param.help, param.name


# -- no server running: the command starts and stops the embedded Redis itself --------


def test_commands_without_a_server_leave_no_redis_behind(tmp_path):
    data_dir = tmp_path / "data"
    created = chatroom(data_dir, "rooms", "create", "general", "--topic", "Talk about anything")
    assert created.exit_code == 0, created.output
    assert created.output == "Created the room general\n"
    assert "Redis is now ready to exit" in (data_dir / "redis.log").read_text()  # started, stopped
    assert redis_pid(data_dir) is None and not redis_servers_on(data_dir), "redis-server left"
    user = chatroom(data_dir, "users", "create", "Alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert user.exit_code == 0 and "Created the user Alice" in user.output

    rooms = json_of(chatroom(data_dir, "rooms", "list", "--json"))
    assert [(r["name"], r["topic"], r["members"]) for r in rooms] == [
        ("general", "Talk about anything", 0),
        ("lobby", "Everyone's room", 1),
    ]
    users = json_of(chatroom(data_dir, "users", "list", "--json"))
    assert [(u["name"], u["disabled"], u["sessions"]) for u in users] == [("Alice", False, 0)]
    assert chatroom(data_dir, "users", "list").output.startswith("Alice  created ")
    assert json_of(chatroom(data_dir, "stats", "--json")) == {
        "rooms": 2,
        "users": 1,
        "messages": 0,
        "processes": 0,
        "connected_clients": None,
        "files": 0,  # issue 15
        "file_bytes": 0,
    }
    assert "connected clients: no server running" in chatroom(data_dir, "stats").output
    assert json_lines_of(chatroom(data_dir, "history", "lobby", "--json")) == []

    deleted = chatroom(data_dir, "rooms", "delete", "general", "--yes")
    assert deleted.exit_code == 0 and "Deleted the room general" in deleted.output
    assert [r["name"] for r in json_of(chatroom(data_dir, "rooms", "list", "--json"))] == ["lobby"]
    assert redis_pid(data_dir) is None and not redis_servers_on(data_dir)
    lock = DataDirectory(data_dir)
    assert lock.try_lock(), "the command kept the data directory locked"
    lock.unlock()


def test_passwords_are_prompted_or_read_from_stdin(tmp_path):
    data_dir = tmp_path / "data"
    prompted = chatroom(data_dir, "users", "create", "bob", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert "Password:" in prompted.output and PASSWORD not in prompted.output
    new = "a brand new password"
    changed = chatroom(data_dir, "users", "set-password", "BOB", "--password-stdin", stdin=new)
    assert changed.exit_code == 0 and "Set a new password for bob" in changed.output
    disabled = chatroom(data_dir, "users", "disable", "bob")
    assert disabled.exit_code == 0 and "Disabled bob (0 sessions revoked)" in disabled.output
    assert json_of(chatroom(data_dir, "users", "list", "--json"))[0]["disabled"] is True
    assert chatroom(data_dir, "users", "enable", "bob").output == "Enabled bob\n"


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("rooms", "create", "Bad Name"), None, 1, "room name must match"),
        (("rooms", "create", "lobby"), None, 1, "the room 'lobby' exists"),
        (("rooms", "delete", "lobby", "--yes"), None, 1, "'lobby' cannot be deleted"),
        (("rooms", "delete", "nowhere", "--yes"), None, 1, "no room 'nowhere'"),
        (("users", "create", "no spaces", "--password-stdin"), PASSWORD, 1, "username must be"),
        (("users", "create", "carol", "--password-stdin"), "short\n", 1, "password must be 8-256"),
        (("users", "disable", "nobody"), None, 1, "no user 'nobody'"),
        (("users", "enable", "bad/name"), None, 1, "username must be"),
        (("history", "nowhere"), None, 1, "no room 'nowhere'"),
        (("history", "lobby", "--since", "-1"), None, 2, "--since"),
        (("stats", "--redis-prefix", "bad prefix"), None, 2, "redis_prefix may hold"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1_or_2(tmp_path, args, stdin, code, message):
    result = chatroom(tmp_path / "data", *args, stdin=stdin)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    if code == 1:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("chatroom: ")
    assert redis_pid(tmp_path / "data") is None


def test_delete_asks_first(tmp_path):
    data_dir = tmp_path / "data"
    assert chatroom(data_dir, "rooms", "create", "keep").exit_code == 0
    refused = chatroom(data_dir, "rooms", "delete", "keep", stdin="n\n")
    assert refused.exit_code == 1 and "Delete the room 'keep'" in refused.output
    assert "keep" in chatroom(data_dir, "rooms", "list").output
    confirmed = chatroom(data_dir, "rooms", "delete", "keep", stdin="y\n")
    assert confirmed.exit_code == 0 and "Deleted the room keep" in confirmed.output


def test_a_locked_data_dir_without_a_redis_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr("chatroom.storage.RUNNING_REDIS_WAIT_SECONDS", 0.2)
    data_dir = tmp_path / "data"
    holder = DataDirectory(data_dir)  # stands for a server that uses --redis-url
    assert holder.try_lock()
    try:
        # flock is per open file: this process's second open is refused like another's.
        result = chatroom(data_dir, "stats")
    finally:
        holder.unlock()
    assert result.exit_code == 2
    assert "a chatroom server is using" in result.stderr and "--redis-url" in result.stderr


def test_an_external_redis_is_used_as_given(tmp_path, redis_url):
    data_dir = tmp_path / "data"
    args = ("--redis-url", redis_url, "--redis-prefix", "other")
    assert chatroom(data_dir, "rooms", "create", "general", *args).exit_code == 0
    assert json_of(chatroom(data_dir, "stats", "--json", *args))["rooms"] == 2
    assert not (data_dir / "redis.sock").exists() and not (data_dir / "serve.lock").exists()


# -- beside a running server on the same data directory -------------------------------


@pytest.fixture
async def server(tmp_path, serve_processes):
    running = serve_processes(tmp_path / "data")
    await running.ready()
    return running


async def socket_of(server, name: str, join: str | None = "lobby") -> ChatClient:
    token = await server.api.user(name)
    client = ChatClient(await connect(server.ws_url, token), name)
    await client.next("hello")
    if join:
        await client.join(join)
    return client


async def wait_closed(client: ChatClient, timeout: float = 5.0) -> int | None:
    """Read (bounded) until the server closes the socket; its close code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await client.read_frame(deadline - loop.time()) is not None:
        pass
    return client.ws.close_code


@pytest.mark.timeout(60)
async def test_a_room_created_by_the_cli_is_served_at_once(server):
    data_dir = server.data_dir
    created = await in_thread(data_dir, "rooms", "create", "ops", "--topic", "Operators")
    assert created.exit_code == 0, created.output
    token = await server.api.user("alice")
    rooms = body(await server.api.request("GET", "/api/rooms", token=token))["rooms"]
    assert {"name": "ops", "topic": "Operators"}.items() <= rooms[1].items()
    alice = await socket_of(server, "alice", join="ops")
    await alice.send("hello ops", room="ops", client_id="c1")
    assert (await alice.next("ack"))["id"] == 1
    alice.close()


@pytest.mark.timeout(60)
async def test_history_exports_the_messages_sent_to_the_server(server):
    alice = await socket_of(server, "alice")
    for i in range(3):
        await alice.send(f"line {i}", client_id=f"c{i}")
        await alice.next("ack")
    alice.close()
    token = await server.api.user("bob")
    response = await server.api.request("POST", "/api/rooms", {"name": "side"}, token=token)
    assert response.code == 201, response.body

    exported = json_lines_of(await in_thread(server.data_dir, "history", "lobby", "--json"))
    assert [(m["id"], m["user"], m["text"]) for m in exported] == [
        (1, "alice", "line 0"),
        (2, "alice", "line 1"),
        (3, "alice", "line 2"),
    ]
    since = json_lines_of(
        await in_thread(server.data_dir, "history", "lobby", "--json", "--since", "2")
    )
    assert [m["id"] for m in since] == [3]
    lines = (await in_thread(server.data_dir, "history", "lobby")).output.splitlines()
    assert len(lines) == 3 and lines[0].startswith("1  ") and lines[0].endswith("alice: line 0")
    # The server's own Redis was used: no second redis-server on the data directory.
    assert redis_servers_on(server.data_dir) == [redis_pid(server.data_dir)]
    stats = json_of(await in_thread(server.data_dir, "stats", "--json"))
    assert (stats["rooms"], stats["users"], stats["messages"]) == (2, 2, 3)


@pytest.mark.timeout(60)
async def test_disabling_a_user_signs_them_out_and_closes_their_socket(server):
    token = await server.api.user("mallory")
    mallory = await socket_of(server, "mallory")
    await mallory.send("hi", client_id="c1")
    await mallory.next("ack")  # the server now caches mallory's access to lobby
    bob = await socket_of(server, "bob")

    result = await in_thread(server.data_dir, "users", "disable", "Mallory")
    assert result.exit_code == 0, result.output
    assert "Disabled mallory (" in result.output

    assert await wait_closed(mallory) == 1008
    mallory.close()
    response = await server.api.request("GET", "/api/rooms", token=token)
    assert response.code == 401
    login = {"username": "mallory", "password": PASSWORD}
    assert (await server.api.request("POST", "/api/login", login)).code == 401
    await bob.send("still here", client_id="b1")
    assert (await bob.next("ack"))["id"] == 2
    bob.close()


@pytest.mark.timeout(60)
async def test_deleting_a_room_tells_its_sockets_and_unlists_it(server):
    token = await server.api.user("alice")
    response = await server.api.request("POST", "/api/rooms", {"name": "doomed"}, token=token)
    assert response.code == 201
    alice = await socket_of(server, "alice", join="doomed")
    await alice.send("soon gone", room="doomed", client_id="c1")
    await alice.next("ack")
    await alice.join("lobby")

    result = await in_thread(server.data_dir, "rooms", "delete", "doomed", "--yes")
    assert result.exit_code == 0, result.output
    assert "Deleted the room doomed (1 members, 1 messages)" in result.output

    removed = await alice.next("removed", room="doomed")  # issue 13: SPEC §6
    assert removed["reason"] == "deleted"
    rooms = body(await server.api.request("GET", "/api/rooms", token=token))["rooms"]
    assert [room["name"] for room in rooms] == ["lobby"]
    await alice.send("again?", room="doomed", client_id="c2")
    assert (await alice.next("error", client_id="c2"))["code"] == "not_found"
    await alice.send("lobby works", client_id="c3")
    assert (await alice.next("ack", client_id="c3"))["id"] == 1
    # A room made again under the name starts afresh.
    assert (await in_thread(server.data_dir, "rooms", "create", "doomed")).exit_code == 0
    assert json_lines_of(await in_thread(server.data_dir, "history", "doomed", "--json")) == []
    alice.close()


@pytest.mark.timeout(60)
async def test_stats_counts_the_connected_clients(server):
    clients = [await socket_of(server, name) for name in ("alice", "bob", "alice")]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # each process reports its count every 3 s
    while True:
        stats = json_of(await in_thread(server.data_dir, "stats", "--json"))
        if stats["connected_clients"] == 3 or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert stats["connected_clients"] == 3 and stats["processes"] == 1
    assert stats["users"] == 2
    for client in clients:
        client.close()


# -- on PostgreSQL and MySQL/MariaDB ---------------------------------------------------


def test_operator_commands_on_a_sql_server(tmp_path, sql_url, redis_url):
    data_dir = tmp_path / "data"
    storage = ("--database-url", sql_url, "--redis-url", redis_url)
    assert chatroom(data_dir, "rooms", "create", "general", *storage).exit_code == 0
    args = ("users", "create", "Alice", "--password-stdin", *storage)
    created = chatroom(data_dir, *args, stdin=PASSWORD)
    assert created.exit_code == 0, created.output
    assert chatroom(data_dir, "users", "disable", "alice", *storage).exit_code == 0
    users = json_of(chatroom(data_dir, "users", "list", "--json", *storage))
    assert [(u["name"], u["disabled"]) for u in users] == [("Alice", True)]
    deleted = chatroom(data_dir, "rooms", "delete", "general", "--yes", *storage)
    assert deleted.exit_code == 0, deleted.output
    stats = json_of(chatroom(data_dir, "stats", "--json", *storage))
    assert (stats["rooms"], stats["users"]) == (1, 1)
