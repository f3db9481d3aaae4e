"""The database may go away: clients get a fixed ``unavailable`` (the driver's words go
to the log only), and when it comes back the server reconnects by itself.

A database restart is simulated without touching the shared SQL servers: the
server's own connections are ended (``pg_terminate_backend``, MySQL ``KILL``),
and for an outage its test database stops accepting connections for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from urllib.parse import urlsplit

import pytest
from playhouse.db_url import connect as connect_database

from chatroom.storage import initialise_database
from tests.helpers import PASSWORD, SQL_SERVER_VARIABLES, body, temporary_database

FIXED_MESSAGE = "the database is unavailable; try again shortly"


@contextlib.contextmanager
def sql_admin(kind: str):
    admin = connect_database(os.environ[SQL_SERVER_VARIABLES[kind]])
    if kind == "postgresql":
        admin.connect()
        admin.connection().autocommit = True  # ALTER DATABASE refuses a transaction
    try:
        yield admin
    finally:
        admin.close()


def end_connections(kind: str, url: str) -> int:
    """End every connection to the database of ``url``, as a server restart would;
    return how many there were once all are gone."""
    name = urlsplit(url).path.lstrip("/")
    with sql_admin(kind) as admin:
        if kind == "postgresql":
            sessions = (
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            )
            kill = "SELECT pg_terminate_backend(%s)"
        else:
            sessions = "SELECT id FROM information_schema.processlist WHERE db = %s"
            kill = "KILL %s"
        ended = [row[0] for row in admin.execute_sql(sessions, (name,)).fetchall()]
        for session in ended:
            with contextlib.suppress(Exception):  # it may have ended by itself meanwhile
                admin.execute_sql(kill, (session,))
        deadline = time.monotonic() + 10
        # The ended ones must be gone; the server's background tasks (the archiver)
        # may open new connections at once, as they would after a restart.
        while {row[0] for row in admin.execute_sql(sessions, (name,)).fetchall()} & set(ended):
            assert time.monotonic() < deadline, "the connections did not end"
            time.sleep(0.05)
    return len(ended)


def allow_connections(url: str, allowed: bool) -> None:
    name = urlsplit(url).path.lstrip("/")
    with sql_admin("postgresql") as admin:
        admin.execute_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')


@pytest.fixture(params=["postgresql", "mysql"])
def sql_url(request):
    with temporary_database(request.param) as url:
        yield request.param, url


async def start_on(url: str, config, app_factory):
    """The real app on the SQL database at ``url``, its schema made as by ``initdb``."""
    initialise_database(config.replace(database_url=url))
    return await app_factory(database_url=url)


async def login(app) -> int:
    response = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}
    )
    return response.code


async def test_the_server_reconnects_after_the_database_restarts(sql_url, config, app_factory):
    kind, url = sql_url
    app = await start_on(url, config, app_factory)
    token = await app.api.user("alice")
    for _ in range(3):
        # Many requests at once: many pool threads, each with its own connection.
        await asyncio.gather(
            *(app.api.request("GET", "/api/rooms", token=token) for _ in range(16))
        )
        assert await asyncio.to_thread(end_connections, kind, url) >= 1
        # The very next requests work: each thread reconnects on its first statement,
        # also when that statement begins a transaction (login records a session).
        assert await login(app) == 200
        health = await app.api.request("GET", "/healthz")
        assert health.code == 200, health.body
        answers = await asyncio.gather(
            *(app.api.request("GET", "/api/rooms", token=token) for _ in range(16))
        )
        assert [a.code for a in answers] == [200] * 16
        created = await app.api.request("POST", "/api/rooms", {"name": f"r{_}"}, token)
        assert created.code == 201


async def test_an_outage_is_a_fixed_503_and_the_server_recovers_after_it(
    postgresql_url, config, app_factory, caplog
):
    url = postgresql_url
    app = await start_on(url, config, app_factory)
    await app.api.user("alice")
    allow_connections(url, False)
    try:
        await asyncio.to_thread(end_connections, "postgresql", url)
        caplog.set_level(logging.WARNING)
        for _ in range(3):
            response = await app.api.request(
                "POST", "/api/login", {"username": "alice", "password": PASSWORD}
            )
            assert response.code == 503
            assert body(response) == {"error": {"code": "unavailable", "message": FIXED_MESSAGE}}
        health = await app.api.request("GET", "/healthz")
        assert health.code == 503 and body(health)["database"] != "ok"
        # The driver's own words are in the log, for the operator.
        assert "accepting connections" in caplog.text
    finally:
        allow_connections(url, True)
    assert await login(app) == 200
    assert (await app.api.request("GET", "/healthz")).code == 200


async def test_database_errors_never_reach_clients(app, config, caplog):
    token = await app.api.user("alice")
    db = sqlite3.connect(config.data_dir / "chatroom.db")
    db.execute("DROP TABLE session")  # any driver error stands in for an outage
    db.commit()
    db.close()
    caplog.set_level(logging.WARNING)
    response = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}
    )
    assert response.code == 503
    assert body(response) == {"error": {"code": "unavailable", "message": FIXED_MESSAGE}}
    response = await app.api.request("GET", "/api/rooms", token=token)
    assert response.code == 503
    assert b"session" not in response.body and b"table" not in response.body
    assert "no such table: session" in caplog.text
