"""The archive when PostgreSQL stops while Redis is up (SPEC §7): sends keep working,
nothing is lost, and the archive catches up once the database is back.

The test runs a PRIVATE PostgreSQL (initdb in a temporary directory, as the
``postgres`` user), never the shared server, and stops and starts that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from playhouse.db_url import connect

from chatroom.server import initialise_database
from tests.helpers import body

pytestmark = pytest.mark.timeout(120)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip("PostgreSQL server binaries are not installed")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of this test only, run as the postgres user."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="chatroom-pg-")
        self.data = os.path.join(self.root, "data")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            _pg_bin("initdb"), "-D", self.data, "--auth=trust", "-U", "postgres", "-E", "UTF8"
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", "postgres", "--", *argv)
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-o", options, "-w", "-l",
                  os.path.join(self.root, "log"), "start")  # fmt: skip

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _archived_ids(url: str) -> list[int]:
    db = connect(url)
    try:
        cursor = db.execute_sql(
            "SELECT message_id FROM archived_message WHERE room_name = 'lobby' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]
    finally:
        db.close()


async def _until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_postgresql_down_sends_go_on_and_the_archive_catches_up(
    private_postgres, config, app_factory
):
    url = private_postgres.url
    initialise_database(config.replace(database_url=url))
    app = await app_factory(database_url=url, history_size=3, send_burst=100_000)
    alice = await app.client("alice")
    for n in range(5):
        await alice.send(f"before {n}")
        await alice.next("ack")
    await _until(lambda: asyncio.to_thread(lambda: len(_archived_ids(url)) == 5))

    private_postgres.stop()
    for n in range(20):
        await alice.send(f"during {n}")
        assert (await alice.next("ack"))["id"] == 6 + n
    health = await _until(lambda: _health_if(app, lambda h: h["archive"].startswith("error")))
    assert health["redis"] == "ok"

    private_postgres.start()
    await _until(lambda: _health_if(app, lambda h: h["archive"] == "ok" and h["status"] == "ok"))
    await _until(lambda: asyncio.to_thread(lambda: _archived_ids(url) == list(range(1, 26))))
    # Redis is trimmed back to history-size once everything is archived.
    token = await app.api.login("alice")
    page = body(await app.api.request("GET", "/api/rooms/lobby/messages?limit=200", token=token))
    assert [m["id"] for m in page["messages"]] == list(range(1, 26))


async def _health_if(app, predicate):
    health = body(await app.api.request("GET", "/healthz"))
    return health if predicate(health) else None
