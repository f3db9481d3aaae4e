"""The ``chatroom`` command: options through CliRunner, and real ``chatroom serve`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from chatroom import __version__
from chatroom.cli import main
from chatroom.config import Config
from tests.helpers import ChatClient, body, connect
from tests.processes import redis_pid


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", ["serve", "initdb"])
def test_every_option_has_help_default_and_env_var(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "--data-dir" in result.output and "CHATROOM_DATA_DIR" in result.output
    params = [p for p in main.commands[command].params if p.name != "help"]
    for param in params:
        assert param.help, param.name
        assert param.envvar == "CHATROOM_" + param.name.upper(), param.name
        assert param.show_default, param.name


def test_serve_has_an_option_for_every_config_field():
    options = {p.name for p in main.commands["serve"].params}
    assert set(Config.__dataclass_fields__) <= options


def test_initdb_is_idempotent(tmp_path):
    runner = CliRunner()
    first = runner.invoke(main, ["initdb", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0 and "Initialised a new database" in first.output
    second = runner.invoke(main, ["initdb"], env={"CHATROOM_DATA_DIR": str(tmp_path)})
    assert second.exit_code == 0 and "up to date" in second.output
    assert (tmp_path / "chatroom.db").exists()


def test_bad_option_values_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path), "--allowed-origins", "evil"]
    )
    assert result.exit_code == 2 and "allowed origin" in result.output


def test_no_redis_server_is_one_clear_line_and_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no redis-server found" in lines[0] and "--redis-url" in lines[0]


@pytest.mark.timeout(120)
async def test_serve_keeps_the_last_100_across_a_restart(tmp_path, serve_processes):
    data_dir = tmp_path / "data"
    server = serve_processes(data_dir)
    seconds = await server.ready()
    print(f"chatroom serve ready in {seconds:.2f}s")
    assert "Initialised a new database" in server.read_output().splitlines()[0]
    token = await server.api.user("alice")
    alice = ChatClient(await connect(server.ws_url, token), "alice")
    await alice.next("hello")
    await alice.join("lobby")
    for i in range(150):
        await alice.send(f"message {i}", client_id=f"c{i}")
    acked = [(await alice.next("ack"))["id"] for _ in range(150)]
    assert acked == list(range(1, 151))
    alice.close()

    embedded = redis_pid(data_dir)
    assert embedded is not None
    assert server.stop(signal.SIGTERM) == 0
    assert redis_pid(data_dir) is None, "the embedded redis-server outlived chatroom"

    again = serve_processes(data_dir)
    await again.ready()
    bob_token = await again.api.user("bob")
    history = body(await again.api.request("GET", "/api/rooms/lobby/messages", token=bob_token))
    assert [m["id"] for m in history["messages"]] == list(range(51, 151))
    assert history["messages"][-1]["text"] == "message 149"
    alice_token = await again.api.login("alice")  # the account survived too
    rooms = body(await again.api.request("GET", "/api/rooms", token=alice_token))["rooms"]
    assert rooms[0]["last_id"] == 150
    # Ctrl-C reaches the whole process group; chatroom still exits cleanly.
    os.killpg(again.process.pid, signal.SIGINT)
    assert again.process.wait(10) == 0
    assert redis_pid(data_dir) is None


@pytest.mark.timeout(60)
async def test_second_serve_on_the_same_data_dir_is_refused(tmp_path, serve_processes):
    data_dir = tmp_path / "data"
    first = serve_processes(data_dir)
    await first.ready()
    second = serve_processes(data_dir)
    assert second.process.wait(20) == 2
    assert "another chatroom server is using" in second.read_output()
    assert (await first.api.request("GET", "/healthz")).code == 200
    assert first.stop() == 0


@pytest.mark.timeout(60)
async def test_processes_share_one_chat_and_stop_together(tmp_path, serve_processes):
    data_dir = tmp_path / "data"
    server = serve_processes(data_dir, "--processes", "2")
    await server.ready()
    workers = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    assert len(workers) >= 2  # two workers (the embedded redis runs in its own session)
    tokens = [await server.api.user(name) for name in ("alice", "bob")]
    clients = []
    for _ in range(6):  # enough sockets that both workers get some
        for name, token in zip(("alice", "bob"), tokens, strict=True):
            client = ChatClient(await connect(server.ws_url, token), name)
            await client.next("hello")
            await client.join("lobby")
            clients.append(client)
    await clients[0].send("to every process", client_id="x")
    for client in clients:
        message = await client.next("message")
        assert message["text"] == "to every process" and message["id"] == 1
    for client in clients:
        client.close()
    assert server.stop(signal.SIGTERM) == 0
    time.sleep(0.2)
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()
        )
    assert redis_pid(data_dir) is None


@pytest.mark.timeout(60)
async def test_strict_durability_fsyncs_every_write(tmp_path, serve_processes):
    import redis

    data_dir = tmp_path / "data"
    server = serve_processes(data_dir, "--durability", "strict")
    await server.ready()
    with redis.Redis(unix_socket_path=str(data_dir / "redis.sock")) as client:
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    assert server.stop() == 0


@pytest.mark.parametrize(("fsync", "accepted"), [("everysec", False), ("always", True)])
def test_strict_durability_on_an_external_redis(tmp_path, fsync, accepted):
    from chatroom.embedded_redis import EmbeddedRedis
    from chatroom.storage import strict_durability_needs_waitaof

    external = EmbeddedRedis(tmp_path, fsync=fsync)  # a stand-in for an external Redis 6.2/7.0
    external.start()
    try:
        if accepted:
            assert strict_durability_needs_waitaof(external.url) is False
        else:
            result = CliRunner().invoke(
                main,
                ["serve", "--data-dir", str(tmp_path / "d"), "--redis-url", external.url,
                 "--durability", "strict", "--port", "1"],
            )  # fmt: skip
            assert result.exit_code == 2
            assert "--durability strict needs" in result.output
    finally:
        external.stop()
