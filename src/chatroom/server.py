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
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import redis as sync_redis
import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatroom import __version__
from chatroom.app import Controllers, make_app
from chatroom.config import MAX_HISTORY_SIZE, Config, ConfigError, redact_url
from chatroom.controllers import (
    AuthController,
    BlockingRunner,
    ChatController,
    HealthController,
    RoomController,
    SendLimits,
)
from chatroom.controllers.admin import AdminController
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.chat import ConnectionCaps
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.datadir import DataDirectory, DataDirError
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.metrics import Metrics
from chatroom.models import (
    AuthThrottle,
    MessageRepository,
    PresenceRepository,
    RedisKeys,
    RoomQuota,
    migrate_schema,
    open_database,
)
from chatroom.models.archive import ArchiveState
from chatroom.views.metrics import make_metrics_app
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


def strict_durability_needs_waitaof(redis_url: str) -> bool:
    """How an external Redis can honour ``--durability strict``.

    False: it fsyncs every write already (``appendfsync always``). True: it has
    WAITAOF (Redis >= 7.2), run after each send. Neither: a ConfigError.
    """
    with sync_redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        if (
            client.config_get("appendfsync").get("appendfsync") == "always"
            and client.config_get("appendonly").get("appendonly") == "yes"
        ):
            return False
        version = tuple(int(p) for p in client.info("server")["redis_version"].split(".")[:2])
    if version >= (7, 2):
        return True
    raise ConfigError(
        "--durability strict needs an external Redis with appendonly yes and appendfsync "
        "always, or Redis >= 7.2 (WAITAOF); this one has neither"
    )


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

    def __init__(
        self,
        config: Config,
        redis_url: str,
        cookie_secret: str,
        wait_for_fsync: bool = False,
        worker_index: int = 0,
    ) -> None:
        self.config = config
        self.worker_index = worker_index
        self.redis_url = redis_url
        self.cookie_secret = cookie_secret
        self.wait_for_fsync = wait_for_fsync
        self._tasks: list[asyncio.Task] = []

    async def start(self, sockets: list[socket.socket]) -> None:
        config = self.config
        self.database = open_database(config.effective_database_url)
        self.redis = make_redis(self.redis_url)
        self.run_blocking = BlockingRunner(config.db_threads)
        keys = RedisKeys(config.redis_prefix)
        self.metrics = Metrics()
        messages = MessageRepository(
            self.redis,
            keys,
            config.history_size,
            wait_for_fsync=self.wait_for_fsync,
            archive_backlog=config.archive_backlog,  # [archive]
        )
        rooms = RoomController(
            self.run_blocking, messages, RoomQuota(self.redis, keys, config.rooms_per_hour)
        )
        self.chat = ChatController(
            rooms,
            messages,
            PresenceRepository(self.redis, keys),
            SendLimits(config.max_message_chars, config.send_burst, config.send_per_second),
            ReadMarkerBuffer(self.run_blocking),
            self.metrics,
            ConnectionCaps(config.max_sockets_per_user, config.joins_per_minute),
        )
        # [archive] the archiver loop (one process at a time works), paging and search.
        self.archive = ArchiveController(
            self.run_blocking,
            ArchiveState(self.redis, keys),
            messages,
            rooms,
            self.metrics,
            retention_days=config.retention_days,
        )
        controllers = Controllers(
            auth=AuthController(
                self.run_blocking,
                throttle=AuthThrottle(
                    self.redis, keys, per_address=(config.auth_burst, config.auth_per_minute / 60)
                ),
                session_days=config.session_days,
                events=messages,
            ),
            rooms=rooms,
            chat=self.chat,
            health=HealthController(self.run_blocking, messages, archive=self.archive),
            archive=self.archive,  # [archive]
        )
        self.app = make_app(config, controllers, self.cookie_secret)
        self.http = tornado.httpserver.HTTPServer(
            self.app,
            max_body_size=BODY_READ_FACTOR * config.max_body_bytes,
            idle_connection_timeout=300,
        )
        self.http.add_sockets(sockets)
        self.metrics_http = None
        if config.metrics_port:
            # Each worker of --processes N listens on metrics_port + its index.
            self.metrics_http = tornado.httpserver.HTTPServer(make_metrics_app(self.metrics))
            self.metrics_http.listen(config.metrics_port + self.worker_index, config.metrics_host)
        self._tasks = [
            asyncio.create_task(self.chat.run_listener(), name="chatroom-listener"),
            asyncio.create_task(self.chat.run_presence(), name="chatroom-presence"),
            asyncio.create_task(self.archive.run(), name="chatroom-archiver"),  # [archive]
        ]
        # Ready means subscribed: nothing acknowledged from now on can be missed here.
        await asyncio.wait_for(self.chat.listening.wait(), timeout=10)

    async def stop(self) -> None:
        """Stop accepting, close sockets with 1001, let work finish, release everything."""
        self.http.stop()
        if self.metrics_http is not None:
            self.metrics_http.stop()
        self.chat.close_all(1001, "server shutting down")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), SHUTDOWN_GRACE_SECONDS)
        self.archive.stop()  # [archive]
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.chat.read_markers.flush()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.http.close_all_connections(), 1.0)
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()
        self.run_blocking.shutdown()
        self.database.close()

    async def _drain(self) -> None:
        while self.chat.connection_count or self.app.settings["background_tasks"]:
            await asyncio.sleep(0.02)


#: How often a single-process server checks that its embedded Redis is alive.
SUPERVISE_INTERVAL_SECONDS = 1.0


async def supervise(embedded: EmbeddedRedis) -> None:
    """Restart the embedded Redis whenever it dies (single-process mode)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
        try:
            await loop.run_in_executor(None, embedded.restart_if_dead)
        except Exception:
            log.exception("could not restart the embedded redis-server; retrying")


async def run_until_signal(
    config: Config,
    redis_url: str,
    cookie_secret: str,
    sockets: list[socket.socket],
    embedded: EmbeddedRedis | None = None,
    wait_for_fsync: bool = False,
    worker_index: int = 0,
) -> None:
    server = ChatServer(config, redis_url, cookie_secret, wait_for_fsync, worker_index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start(sockets)
    supervisor = asyncio.create_task(supervise(embedded)) if embedded else None
    await stop.wait()
    log.info("stopping (pid %d)", os.getpid())
    if supervisor is not None:
        supervisor.cancel()
    await server.stop()


def _restart_embedded(embedded: EmbeddedRedis | None) -> Callable[[int], None]:
    def on_child_exit(pid: int) -> None:
        if embedded is not None and embedded.owns_pid(pid):
            try:
                embedded.restart_if_dead()
            except Exception:
                log.exception("could not restart the embedded redis-server")

    return on_child_exit


def serve(config: Config, echo=print) -> int:
    """Run ``chatroom serve`` until SIGTERM/SIGINT; returns the exit code."""
    data_dir = DataDirectory(config.data_dir)
    data_dir.lock()
    embedded = None
    if config.uses_embedded_redis:
        fsync = "always" if config.durability == "strict" else "everysec"
        embedded = EmbeddedRedis(config.data_dir, fsync=fsync)
    try:
        cookie_secret = config.cookie_secret or data_dir.cookie_secret()
        if embedded is not None:
            embedded.start()
        redis_url = embedded.url if embedded else config.redis_url
        wait_for_fsync = False
        if config.durability == "strict" and embedded is None:
            wait_for_fsync = strict_durability_needs_waitaof(redis_url)
        if initialise_database(config):
            echo(f"Initialised a new database at {redact_url(config.effective_database_url)}")
        sockets = tornado.netutil.bind_sockets(config.port, config.host)
        processes = config.processes or os.cpu_count() or 1
        where = f"http://{config.host}:{config.port}"
        storage = (
            f"embedded Redis in {config.data_dir}"
            if embedded
            else f"external Redis at {redact_url(redis_url)}"
        )
        echo(f"chatroom {__version__} serving on {where} ({processes} process(es), {storage})")
        sys.stdout.flush()
        worker_index = 0
        if processes > 1:
            worker_index = fork_workers(processes, _restart_embedded(embedded))
            if worker_index is None:
                return 0  # the parent: every worker has exited
            embedded = None  # a worker: the parent supervises and stops Redis
        asyncio.run(
            run_until_signal(
                config, redis_url, cookie_secret, sockets, embedded, wait_for_fsync, worker_index
            )
        )
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
        data_dir.unlock()


# -- the operator commands: chatroom rooms|users|history|stats ------------------

T = TypeVar("T")

#: How long an operator command waits for the Redis of a server that holds the
#: data directory (it may be starting).
RUNNING_REDIS_WAIT_SECONDS = 5.0
#: The largest --history-size: exports read everything a room retains, whatever
#: the server's own setting.
EXPORT_HISTORY_SIZE = MAX_HISTORY_SIZE


@contextlib.contextmanager
def admin_redis(config: Config) -> Iterator[str]:
    """The Redis URL an operator command uses, for as long as it runs.

    With --redis-url, that one. Otherwise the data directory's embedded Redis:
    the running server's, when a server holds the lock and its socket answers;
    when none runs, one started here under the lock and stopped afterwards, so
    there is never a second redis-server on the same files.
    """
    if config.redis_url is not None:
        yield config.redis_url
        return
    data_dir = DataDirectory(config.data_dir)
    if not data_dir.try_lock():
        yield _running_server_redis(EmbeddedRedis(config.data_dir))
        return
    try:
        with EmbeddedRedis(config.data_dir) as embedded:
            yield embedded.url
    finally:
        data_dir.unlock()


def _running_server_redis(embedded: EmbeddedRedis) -> str:
    """The URL of the embedded Redis a running server started (``embedded`` is not ours)."""
    deadline = time.monotonic() + RUNNING_REDIS_WAIT_SECONDS
    while True:
        try:
            with sync_redis.Redis(
                unix_socket_path=str(embedded.socket_path),
                socket_timeout=1,
                retry=Retry(NoBackoff(), 0),  # this loop retries, without redis-py's backoff
            ) as client:
                if client.ping():
                    return embedded.url
        except (sync_redis.ConnectionError, sync_redis.TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise DataDirError(
                f"a chatroom server is using {embedded.data_dir}, but no Redis answers on "
                f"{embedded.socket_path}; if that server uses --redis-url, pass the same one"
            )
        time.sleep(0.05)


def run_admin(config: Config, action: Callable[[AdminController], Awaitable[T]]) -> T:
    """Run one operator action on the data of ``config``; its result."""
    with admin_redis(config) as redis_url:
        return asyncio.run(_run_admin(config, redis_url, action))


async def _run_admin(
    config: Config, redis_url: str, action: Callable[[AdminController], Awaitable[T]]
) -> T:
    # One thread: the action's SQL runs in order, on one connection, closed at the end.
    run_blocking = BlockingRunner(1, name="chatroom-admin")
    redis = make_redis(redis_url)
    keys = RedisKeys(config.redis_prefix)
    messages = MessageRepository(redis, keys, EXPORT_HISTORY_SIZE)
    archive = ArchiveController(run_blocking, ArchiveState(redis, keys), messages)
    presence = PresenceRepository(redis, keys)
    admin = AdminController(run_blocking, messages, presence, archive=archive)
    try:
        # Like serve: the schema is brought up to date, and lobby exists.
        await run_blocking(initialise_database, config)
        database = open_database(config.effective_database_url)
        try:
            return await action(admin)
        finally:
            await run_blocking(database.close)
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
        run_blocking.shutdown()
