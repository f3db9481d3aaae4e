"""Real parts, really started: a private redis-server, a temp SQLite file, the real app."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
import redis
import tornado.netutil

from chatroom.config import Config
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import open_database
from chatroom.server import ChatServer
from chatroom.storage import initialise_database
from tests.helpers import Api, ChatClient, connect, temporary_database
from tests.processes import OPENED, ServeProcess

#: Set by scripts/test, which sets up every part the tests need: there a skip is a failure.
REQUIRE_ALL = os.environ.get("CHATROOM_TEST_REQUIRE_ALL") == "1"


def _skip_is_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"not skipped under scripts/test (CHATROOM_TEST_REQUIRE_ALL=1): {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _skip_is_failure(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _skip_is_failure(report)
    return report


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server for the whole run (the same code as the embedded default)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    with redis.Redis(unix_socket_path=str(redis_server.socket_path)) as client:
        client.flushall()
    yield redis_server.url


@pytest.fixture
def config(tmp_path: Path, redis_url: str) -> Config:
    # The in-process archiver: a ChatServer does not start serve's archiver process
    # (--archiver process, the default; tests/test_archiver_process.py covers that).
    return Config(data_dir=tmp_path / "data", redis_url=redis_url, archiver="on")


@pytest.fixture
def database(config: Config) -> Config:
    """A fresh SQLite file, initialised by the same code as ``chatroom initdb``."""
    initialise_database(config)
    return config


@pytest.fixture
def db(database: Config) -> Iterator[peewee.Database]:
    """The models bound to a fresh SQLite file initialised like ``chatroom initdb``."""
    handle = open_database(database.effective_database_url)
    yield handle
    handle.close()


class RunningServer:
    """The real application on a free port, plus helpers that reach it."""

    def __init__(self, server: ChatServer, port: int) -> None:
        self.server = server
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.api = Api(self.base_url)
        self.clients: list[ChatClient] = []

    async def client(self, name: str, join: str | None = "lobby") -> ChatClient:
        """A signed-in user's socket, past ``hello`` and (by default) joined to lobby."""
        token = await self.api.user(name)
        ws = await connect(self.ws_url, token)
        client = ChatClient(ws, name)
        self.clients.append(client)
        hello = await client.next("hello")
        assert hello["user"].lower() == name.lower()
        client.hello = hello
        if join:
            await client.join(join)
        return client


async def start_server(config: Config, redis_url: str) -> RunningServer:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = ChatServer(config.replace(port=port), redis_url, secrets.token_urlsafe(32))
    await server.start(sockets)
    return RunningServer(server, port)


@pytest.fixture
async def app_factory(database: Config, redis_url: str):
    """Start the real app with some settings changed: ``await app_factory(history_size=5)``."""
    started: list[RunningServer] = []

    async def start(**changes) -> RunningServer:
        # Every test user logs in from 127.0.0.1: lift the per-address login limit
        # unless a test asks for it.
        changes.setdefault("auth_burst", 100_000)
        running = await start_server(database.replace(**changes), redis_url)
        started.append(running)
        return running

    yield start
    for running in started:
        for client in running.clients:
            client.close()
        await running.server.stop()


@pytest.fixture
async def app(app_factory) -> RunningServer:
    """The app with production settings, except rate limits that tests do not trip."""
    return await app_factory(send_burst=100_000, auth_burst=100_000)


@pytest.fixture
def serve_processes():
    started: list[ServeProcess] = []

    def start(data_dir: Path, *args: str, env: dict | None = None) -> ServeProcess:
        process = ServeProcess(data_dir, *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(params=["mysql", "postgresql"])
def sql_url(request):
    """A fresh database of its own on each SQL server (MySQL/MariaDB, PostgreSQL), dropped after."""
    with temporary_database(request.param) as url:
        yield url


@pytest.fixture
def postgresql_url():
    with temporary_database("postgresql") as url:
        yield url


@pytest.fixture
def start_hosts(tmp_path, redis_url, postgresql_url, serve_processes):
    """Start servers with their own data dirs, sharing Redis, PostgreSQL and the secret."""
    secret = secrets.token_urlsafe(32)

    async def start(count: int = 2, env: dict | None = None) -> list:
        hosts = [
            serve_processes(
                tmp_path / f"host{i}",
                *("--redis-url", redis_url, "--database-url", postgresql_url),
                *("--cookie-secret", secret),
                env=env,
            )
            for i in range(count)
        ]
        for host in hosts:
            await host.ready()
        return hosts

    return start


@pytest.fixture
async def two_hosts(start_hosts):
    return await start_hosts(2)


@pytest.fixture
async def close_opened_sockets():
    """Close every socket ``tests.processes.socket_on`` opened during the test."""
    yield
    while OPENED:
        OPENED.pop().close()
