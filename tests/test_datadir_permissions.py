"""The data directory holds password hashes (SQLite) and every message (the Redis AOF): each
command that opens it makes it 0700 and its files 0600, also when it existed with looser
modes, and the embedded Redis writes its files private whatever umask chatroom started with."""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from chatroom.cli import main
from chatroom.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def loose_umask():
    """Start chatroom as a user with the usual umask 022 would; restore ours afterwards."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose_data_dir(path: Path, outside: Path) -> Path:
    """A data directory as systemd's StateDirectory= or an older chatroom left it: 0755,
    files 0644, a 0755 subdirectory, and a link to a file that is not chatroom's."""
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    (path / "cookie_secret").write_text(secrets.token_urlsafe(48) + "\n")
    (path / "redis.log").write_text("an old log\n")
    (path / "appendonlydir").mkdir()
    (path / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("")
    outside.write_text("not chatroom's\n")
    (path / "link").symlink_to(outside)
    for entry in [path / "cookie_secret", path / "redis.log", path / "appendonlydir"]:
        os.chmod(entry, 0o755 if entry.is_dir() else 0o644)
    os.chmod(path / "appendonlydir" / "appendonly.aof.1.incr.aof", 0o644)
    os.chmod(outside, 0o644)
    return path


def modes_of(path: Path) -> dict[str, int]:
    """Every directory and regular file under ``path`` (links left out) with its mode."""
    found = {".": mode(path)}
    for entry in path.rglob("*"):
        if entry.is_symlink() or entry.is_socket():
            continue
        found[str(entry.relative_to(path))] = mode(entry)
    return found


def assert_private(path: Path) -> None:
    modes = modes_of(path)
    loose = {
        name: oct(bits)
        for name, bits in modes.items()
        if bits != (0o700 if (path / name).is_dir() else 0o600)
    }
    assert not loose, f"not private: {loose}"


def chatroom(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_initdb_makes_an_existing_loose_data_dir_private(tmp_path):
    data = loose_data_dir(tmp_path / "data", tmp_path / "outside")
    chatroom("initdb", "--data-dir", str(data))
    assert (data / "chatroom.db").exists()
    assert_private(data)
    assert mode(data / "cookie_secret") == 0o600
    # A link is neither followed nor changed: what it points to is not chatroom's.
    assert mode(tmp_path / "outside") == 0o644
    assert (data / "link").is_symlink()


def test_the_embedded_redis_of_an_operator_command_writes_private_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    chatroom("rooms", "create", "quiet", "--data-dir", str(data))
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").exists()
    assert (data / "redis.log").exists()
    assert_private(data)


async def test_serve_keeps_the_data_dir_and_every_aof_rewrite_private(tmp_path, serve_processes):
    data = loose_data_dir(tmp_path / "data", tmp_path / "outside")
    (data / "chatroom.db").write_text("")
    os.chmod(data / "chatroom.db", 0o644)
    server = serve_processes(data)
    await server.ready()
    token = await server.api.user("alice")
    assert token
    with redis.Redis(unix_socket_path=str(data / "redis.sock"), socket_timeout=5) as client:
        client.set("chatroom-test-key", "x")  # something for the rewrite to write
        client.bgrewriteaof()
        deadline = time.monotonic() + 10
        while True:
            persistence = client.info("persistence")
            if not (persistence["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"]):
                break
            assert time.monotonic() < deadline, "the AOF rewrite did not finish"
            time.sleep(0.05)
        assert persistence["aof_last_bgrewrite_status"] == "ok"
    aof_files = list(data.rglob("*.aof"))
    assert aof_files, sorted(modes_of(data))
    assert_private(data)
    assert mode(tmp_path / "outside") == 0o644


def test_a_fresh_data_dir_is_private_from_the_start(tmp_path):
    data = tmp_path / "nested" / "data"
    chatroom("initdb", "--data-dir", str(data))
    assert_private(data)
    # SQLite's WAL and shared-memory files get the database file's mode.
    for name in ("chatroom.db", "chatroom.db-wal", "chatroom.db-shm"):
        if (data / name).exists():
            assert mode(data / name) == 0o600, name


def test_the_embedded_redis_writes_private_files_whatever_our_umask(tmp_path):
    # The process umask here is 022 (the fixture): Redis gets 077 of its own.
    data = tmp_path / "redis"
    data.mkdir(mode=0o700)
    with (
        EmbeddedRedis(data) as embedded,
        redis.Redis(unix_socket_path=str(embedded.socket_path), socket_timeout=5) as client,
    ):
        client.set("key", "value")
    written = [p for p in data.rglob("*") if p.is_file() and not p.is_socket()]
    assert any(p.suffix == ".aof" for p in written), written
    assert {p.name: oct(mode(p)) for p in written if mode(p) != 0o600} == {}
