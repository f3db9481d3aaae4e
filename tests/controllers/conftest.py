"""Controller-layer builders: the controllers of ``wiring.build_controllers``, as
``ChatServer.start`` builds them, and a ``RecordingConnection`` that stands in for a
WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import argon2
import orjson
import peewee
import pytest

from chatroom.config import Config
from chatroom.controllers import Account, BlockingRunner, SendLimits
from chatroom.models import PresenceRepository
from chatroom.storage import make_redis
from chatroom.wiring import build_controllers
from tests.helpers import PASSWORD

#: Every wait for a frame is bounded: a lost frame fails the test fast.
FRAME_TIMEOUT = 5.0

#: Real argon2id with the cheapest parameters, so registering users is quick.
FAST_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

_conn_ids = itertools.count(1)
_barriers = itertools.count(1)


class RecordingConnection:
    """Implements the ``Connection`` protocol; records every frame it is given."""

    def __init__(self, account: Account) -> None:
        self.conn_id = f"test-conn-{next(_conn_ids)}"
        self.account = account
        self.raw: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self._arrived = asyncio.Event()

    def __repr__(self) -> str:
        return f"<RecordingConnection {self.account.name} {self.conn_id}>"

    def deliver(self, frame: bytes) -> None:
        assert isinstance(frame, bytes), frame
        self.raw.append(frame)
        self._arrived.set()

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    @property
    def frames(self) -> list[dict]:
        return [orjson.loads(raw) for raw in self.raw]

    def of_type(self, kind: str) -> list[dict]:
        return [frame for frame in self.frames if frame["type"] == kind]

    def raw_of_type(self, kind: str) -> list[bytes]:
        return [raw for raw in self.raw if orjson.loads(raw)["type"] == kind]

    async def wait_until(
        self, predicate: Callable[[list[dict]], bool], timeout: float = FRAME_TIMEOUT
    ) -> list[dict]:
        """Wait (bounded) until ``predicate(frames)`` holds; return the frames."""

        async def poll() -> list[dict]:
            while True:
                frames = self.frames
                if predicate(frames):
                    return frames
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(poll(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self!r}: condition not met; frames {self.frames}") from None

    async def wait_for(self, kind: str, count: int = 1) -> list[dict]:
        """Wait until at least ``count`` frames of type ``kind`` arrived; return them all."""
        await self.wait_until(lambda frames: sum(f["type"] == kind for f in frames) >= count)
        return self.of_type(kind)


class ChatEnv:
    """The controllers of one process, on the test's Redis and SQLite, plus helpers.

    They are the graph production runs (``build_controllers``), with the test's
    ``Config``; only the password hasher is cheaper. Unlike a server, only the
    listener runs: tests drive presence and read-marker flushes themselves.
    """

    def __init__(self, config: Config, presence: type[PresenceRepository]) -> None:
        assert config.redis_url is not None  # the test's redis-server
        self.redis = make_redis(config.redis_url)
        self.run = BlockingRunner(config.db_threads)
        graph = self.graph = build_controllers(
            config, self.redis, self.run, hasher=FAST_HASHER, presence=presence
        )
        self.messages = graph.messages
        self.events = graph.events
        self.presence = graph.presence
        self.rooms = graph.rooms
        self.chat = graph.chat
        self.auth = graph.auth
        self.admin = graph.admin
        self.connections: list[RecordingConnection] = []
        self._listener: asyncio.Task | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self.chat.run_listener())
        await asyncio.wait_for(self.chat.listening.wait(), FRAME_TIMEOUT)

    async def stop(self) -> None:
        for conn in self.connections:
            with contextlib.suppress(Exception):
                await self.chat.disconnect(conn)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.chat.read_markers.flush()  # as ChatServer.stop does
        self.graph.shutdown()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
        self.run.shutdown()

    async def user(self, name: str, password: str = PASSWORD) -> Account:
        return await self.auth.register(name, password)

    async def connect(self, account: Account) -> RecordingConnection:
        """A connection past ``hello``."""
        conn = RecordingConnection(account)
        self.connections.append(conn)
        await self.chat.connect(conn)
        assert conn.frames[0]["type"] == "hello"
        return conn

    async def joined(self, account: Account, room: str = "lobby") -> RecordingConnection:
        """A new connection of ``account`` that has joined ``room``."""
        conn = await self.connect(account)
        await self.chat.join(conn, room)
        await conn.wait_for("joined")
        return conn

    async def sync(self, room: str, *conns: RecordingConnection) -> None:
        """Wait until every event published to ``room`` so far has reached ``conns``.

        Publishes a marker on the room's event channel; Redis delivers in order, so
        once a connection has the marker it has everything published before it.
        """
        marker = orjson.dumps({"type": "barrier", "n": next(_barriers)})
        await self.events.publish(room, marker)
        for conn in conns:
            await conn.wait_until(lambda _frames, c=conn: marker in c.raw)


@pytest.fixture
async def make_env(db: peewee.Database, config: Config) -> AsyncIterator[Callable[..., Any]]:
    """Build (and at teardown stop) a started ``ChatEnv`` on the test's ``config``."""
    envs: list[ChatEnv] = []

    async def build(
        history_size: int = 100,
        limits: SendLimits | None = None,
        presence: type[PresenceRepository] = PresenceRepository,
        **settings: Any,
    ) -> ChatEnv:
        """``presence`` may be a subclass of the real repository (e.g. one that pauses);
        ``settings``: other ``Config`` fields."""
        limits = limits or SendLimits()
        changes = {
            **settings,
            "db_threads": 4,
            "history_size": history_size,
            "max_message_chars": limits.max_chars,
            "send_burst": limits.burst,
            "send_per_second": limits.per_second,
        }
        env = ChatEnv(config.replace(**changes), presence)
        envs.append(env)
        await env.start()
        return env

    yield build
    for env in envs:
        await env.stop()


@pytest.fixture
async def env(make_env: Callable[..., Any]) -> ChatEnv:
    return await make_env()
