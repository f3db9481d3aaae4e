"""No password of a database or Redis URL is ever printed: ``chatroom initdb``, the start of
``chatroom serve``, the settings' repr, ``--help``; and the one redaction function behind
them copes with malformed URLs."""

from __future__ import annotations

import secrets
import signal
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

from chatroom.cli import main
from chatroom.config import Config
from chatroom.embedded_redis import find_redis_server
from tests.helpers import temporary_database
from tests.processes import free_port

pytestmark = pytest.mark.timeout(60)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` put in (the test PostgreSQL trusts everyone, so it works)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def secret_postgresql_url():
    """A fresh PostgreSQL database, reached with a URL that carries a password."""
    password = f"pw-{secrets.token_hex(8)}"
    with temporary_database("postgresql") as url:
        yield with_password(url, password), password


@pytest.fixture
def secret_redis(tmp_path):
    """A real redis-server on a TCP port that requires a password; yields (url, password)."""
    password = f"rd-{secrets.token_hex(8)}"
    port = free_port()
    process = subprocess.Popen(
        [
            find_redis_server(),
            *("--port", str(port), "--bind", "127.0.0.1", "--requirepass", password),
            *("--save", "", "--appendonly", "no", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
    )
    yield f"redis://:{password}@127.0.0.1:{port}/0", password
    process.terminate()
    process.wait(10)


def test_initdb_never_prints_the_database_password(tmp_path, secret_postgresql_url):
    url, password = secret_postgresql_url
    runner = CliRunner()
    first = runner.invoke(main, ["initdb", "--data-dir", str(tmp_path), "--database-url", url])
    assert first.exit_code == 0, first.output
    assert "Initialised a new database at postgresql://postgres:***@127.0.0.1" in first.output
    # The same through the environment, on a database that is now up to date.
    again = runner.invoke(
        main, ["initdb", "--data-dir", str(tmp_path)], env={"CHATROOM_DATABASE_URL": url}
    )
    assert again.exit_code == 0, again.output
    assert "is up to date" in again.output
    for result in (first, again):
        assert password not in result.output


async def test_serve_never_prints_a_database_or_redis_password(
    tmp_path, secret_postgresql_url, secret_redis, serve_processes
):
    database_url, database_password = secret_postgresql_url
    redis_url, redis_password = secret_redis
    server = serve_processes(
        tmp_path / "data", "--database-url", database_url, "--redis-url", redis_url
    )
    await server.ready()
    assert await server.api.user("alice")  # the server really uses both
    assert server.stop(signal.SIGTERM) == 0
    output = server.read_output()
    assert "Initialised a new database at postgresql://postgres:***@" in output
    assert "external Redis at redis://:***@127.0.0.1:" in output
    assert database_password not in output
    assert redis_password not in output


def test_the_settings_repr_shows_no_password_or_cookie_secret(tmp_path):
    config = Config(
        data_dir=tmp_path,
        database_url="postgresql://chatroom:db-secret-1@db.internal/chatroom",
        redis_url="rediss://default:redis-secret-2@redis.internal:6380/0",
        cookie_secret="cookie-secret-3" * 3,
    )
    shown = repr(config)
    for secret in ("db-secret-1", "redis-secret-2", "cookie-secret-3"):
        assert secret not in shown
    assert "db.internal" in shown and "redis.internal" in shown
    assert "Config(" in shown and "history_size=100" in shown


def test_help_never_shows_a_password_from_the_environment():
    env = {
        "CHATROOM_DATABASE_URL": "postgresql://u:help-secret-1@h/db",
        "CHATROOM_REDIS_URL": "redis://:help-secret-2@h/0",
        "CHATROOM_COOKIE_SECRET": "help-secret-3" * 4,
    }
    for command in (["serve", "--help"], ["initdb", "--help"], ["users", "list", "--help"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 0
        assert "help-secret" not in result.output, command


SECRET = "S3cr-t"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://chatroom:{SECRET}@db.internal:5432/chatroom",
        f"postgresql://chatroom:{SECRET}@db.internal/chatroom?sslmode=require",
        f"mysql://root:{SECRET}@[::1]:3306/chat",
        f"redis://:{SECRET}@redis.internal:6379/0",
        f"rediss://default:{SECRET}@redis.internal:6380/0",
        f"redis://redis.internal:6379/0?password={SECRET}&db=1",
        f"unix:///run/redis/redis.sock?db=0&password={SECRET}",
        f"postgresql://h/db?sslpassword={SECRET}",
        f"redis://h/0?token={SECRET}#x",
        # Malformed: an unescaped "@", "/", "?" or "#" in the password, a bad port.
        f"postgresql://u:a@{SECRET}@h/db",
        f"postgresql://u:{SECRET}/x@h/db",
        f"postgresql://u:{SECRET}?x@h/db",
        f"postgresql://u:{SECRET}#x@h/db",
        f"postgresql://u:{SECRET}@h:notaport/db",
        f"postgresql://u:{SECRET}@h",
        f"u:{SECRET}@h/db",
        f"redis://:{SECRET}%40x@h/0",
    ],
)
def test_a_password_is_redacted_from_any_url(url):
    from chatroom.config import redact_url

    shown = redact_url(url)
    assert SECRET not in shown
    assert "***" in shown


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/chatroom/chatroom.db",
        "sqlite:////tmp/odd:name@here/chatroom.db",
        "postgresql://chatroom@db.internal/chatroom",
        "redis://redis.internal:6379/0",
        "redis://user@redis.internal:6379/0",
        "unix:///run/redis/redis.sock?db=0",
        "",
    ],
)
def test_a_url_without_a_password_is_shown_as_it_is(url):
    from chatroom.config import redact_url

    assert redact_url(url) == url
