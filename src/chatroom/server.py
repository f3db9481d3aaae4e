"""The composition root: builds storage, controllers, the app and the HTTP server, and
runs them until a signal; ``serve`` adds the data dir, the embedded Redis and workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil

from chatroom import __version__
from chatroom.app import Controllers, make_app
from chatroom.config import Config
from chatroom.controllers import (
    AuthController,
    BlockingRunner,
    ChatController,
    HealthController,
    RoomController,
    SendLimits,
)
from chatroom.datadir import DataDirectory
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import (
    MessageRepository,
    PresenceRepository,
    RedisKeys,
    migrate_schema,
    open_database,
)
from chatroom.workers import fork_workers

log = logging.getLogger("chatroom")

#: How long shutdown waits for sockets to close and in-flight sends to finish;
#: with the embedded Redis's own stop this keeps a clean exit within SPEC's 10 s.
SHUTDOWN_GRACE_SECONDS = 3.0
#: Bodies up to this many times ``max_body_bytes`` are read and answered 413;
#: larger ones are cut off unread by the HTTP server (400, connection closed).
BODY_READ_FACTOR = 8


def make_redis(url: str) -> aioredis.Redis:
    """The shared client: a waiting pool, so a burst queues instead of failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=5, socket_timeout=10, socket_connect_timeout=5
    )
    return aioredis.Redis(connection_pool=pool)


def initialise_database(config: Config) -> bool:
    """Create or migrate the schema; True when the database was empty."""
    if config.database_url is None:
        DataDirectory(config.data_dir).create()
    db = open_database(config.effective_database_url)
    try:
        return migrate_schema(db)
    finally:
        db.close()


class ChatServer:
    """One process's running chat: Redis and database clients, controllers, HTTP server."""

    def __init__(self, config: Config, redis_url: str, cookie_secret: str) -> None:
        self.config = config
        self.redis_url = redis_url
        self.cookie_secret = cookie_secret
        self._tasks: list[asyncio.Task] = []

    async def start(self, sockets: list[socket.socket]) -> None:
        config = self.config
        self.database = open_database(config.effective_database_url)
        self.redis = make_redis(self.redis_url)
        self.run_blocking = BlockingRunner(config.db_threads)
        keys = RedisKeys(config.redis_prefix)
        messages = MessageRepository(self.redis, keys, config.history_size)
        rooms = RoomController(self.run_blocking, messages)
        self.chat = ChatController(
            rooms,
            messages,
            PresenceRepository(self.redis, keys),
            SendLimits(config.max_message_chars, config.send_burst, config.send_per_second),
        )
        controllers = Controllers(
            auth=AuthController(self.run_blocking),
            rooms=rooms,
            chat=self.chat,
            health=HealthController(self.run_blocking, messages),
        )
        self.app = make_app(config, controllers, self.cookie_secret)
        self.http = tornado.httpserver.HTTPServer(
            self.app, max_body_size=BODY_READ_FACTOR * config.max_body_bytes, idle_connection_timeout=300
        )
        self.http.add_sockets(sockets)
        self._tasks = [
            asyncio.create_task(self.chat.run_listener(), name="chatroom-listener"),
            asyncio.create_task(self.chat.run_presence(), name="chatroom-presence"),
        ]
        # Ready means subscribed: nothing acknowledged from now on can be missed here.
        await asyncio.wait_for(self.chat.listening.wait(), timeout=10)

    async def stop(self) -> None:
        """Stop accepting, close sockets with 1001, let work finish, release everything."""
        self.http.stop()
        self.chat.close_all(1001, "server shutting down")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), SHUTDOWN_GRACE_SECONDS)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.http.close_all_connections(), 1.0)
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
        self.run_blocking.shutdown()
        self.database.close()

    async def _drain(self) -> None:
        while self.chat.connection_count or self.app.settings["background_tasks"]:
            await asyncio.sleep(0.02)


async def run_until_signal(config: Config, redis_url: str, cookie_secret: str, sockets) -> None:
    server = ChatServer(config, redis_url, cookie_secret)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start(sockets)
    await stop.wait()
    log.info("stopping (pid %d)", os.getpid())
    await server.stop()


def serve(config: Config, echo=print) -> int:
    """Run ``chatroom serve`` until SIGTERM/SIGINT; returns the exit code."""
    data_dir = DataDirectory(config.data_dir)
    data_dir.lock()
    embedded = EmbeddedRedis(config.data_dir) if config.uses_embedded_redis else None
    try:
        cookie_secret = config.cookie_secret or data_dir.cookie_secret()
        if embedded is not None:
            embedded.start()
        redis_url = embedded.url if embedded else config.redis_url
        if initialise_database(config):
            echo(f"Initialised a new database at {config.effective_database_url}")
        sockets = tornado.netutil.bind_sockets(config.port, config.host)
        processes = config.processes or os.cpu_count() or 1
        where = f"http://{config.host}:{config.port}"
        storage = f"embedded Redis in {config.data_dir}" if embedded else "external Redis"
        echo(f"chatroom {__version__} serving on {where} ({processes} process(es), {storage})")
        sys.stdout.flush()
        if processes > 1 and fork_workers(processes) is None:
            return 0  # the parent: every worker has exited
        asyncio.run(run_until_signal(config, redis_url, cookie_secret, sockets))
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
        data_dir.unlock()
