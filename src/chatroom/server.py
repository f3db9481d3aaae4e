"""The composition root of ``chatroom serve``: opens storage, builds the controllers
(``wiring.build_controllers``), the app and the HTTP server, and runs them until a
signal; ``serve`` adds the data dir, the embedded Redis, workers and the archiver's
own process (``--archiver process``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

import redis
import tornado.httpserver
import tornado.netutil

from chatroom import __version__
from chatroom.app import make_app
from chatroom.archiver_child import PLACEMENT_WORDS, ArchiverChild, archiver_placement
from chatroom.config import Config, redact_url
from chatroom.controllers import BlockingRunner
from chatroom.datadir import DataDirectory
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.fdlimit import check_open_files
from chatroom.models import open_database
from chatroom.models.archive_locks import ARCHIVER_LOCK, RETENTION_LOCK
from chatroom.models.keys import RedisKeys
from chatroom.models.messages import DurabilityWait
from chatroom.storage import (
    check_sharded_pubsub,
    close_redis,
    initialise_database,
    make_redis,
    strict_durability_wait,
)
from chatroom.views.body_limit import BodyLimit
from chatroom.views.files import UPLOAD_PATH
from chatroom.views.metrics import make_metrics_app
from chatroom.wiring import build_controllers
from chatroom.workers import fork_workers

log = logging.getLogger("chatroom")

#: How long shutdown waits for sockets to close and in-flight sends to finish;
#: with the embedded Redis's own stop this keeps a clean exit within SPEC's 10 s.
SHUTDOWN_GRACE_SECONDS = 3.0
#: Shutdown: how long client frames in flight may take, and the disconnects
#: (presence) of sockets dropped after the grace, before they are cancelled.
SHUTDOWN_IN_FLIGHT_SECONDS = 1.0
SHUTDOWN_DISCONNECTS_SECONDS = 1.0
#: A declared Content-Length over ``max_body_bytes`` is answered 413 unread (BodyLimit);
#: a chunked body is read up to this many times ``max_body_bytes`` and answered 413,
#: and cut off beyond that by the HTTP server (400, connection closed).
BODY_READ_FACTOR = 8


class ChatServer:
    """One process's running chat: Redis and database clients, controllers, HTTP server."""

    def __init__(
        self,
        config: Config,
        redis_url: str,
        cookie_secret: str,
        wait_for_fsync: DurabilityWait | None = None,
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
        controllers = build_controllers(
            config, self.redis, self.run_blocking, wait_for_fsync=self.wait_for_fsync
        )
        self.controllers = controllers
        self.metrics = controllers.metrics
        self.chat = controllers.chat
        self.app = make_app(config, controllers.app_controllers(), self.cookie_secret)
        self.http = tornado.httpserver.HTTPServer(
            # Uploads have their own, larger limit, checked by UploadHandler (issue 15).
            BodyLimit(self.app, config.max_body_bytes, exempt=UPLOAD_PATH),
            max_body_size=BODY_READ_FACTOR * config.max_body_bytes,
            idle_connection_timeout=300,
        )
        self.http.add_sockets(sockets)
        self.metrics_http = None
        if config.metrics_port:
            # Each worker of --processes N listens on metrics_port + its index.
            self.metrics_http = tornado.httpserver.HTTPServer(
                make_metrics_app(self.metrics, controllers.archive)
            )
            self.metrics_http.listen(config.metrics_port + self.worker_index, config.metrics_host)
        self._tasks = [
            asyncio.create_task(self.chat.run_listener(), name="chatroom-listener"),
            asyncio.create_task(self.chat.run_presence(), name="chatroom-presence"),
        ]
        if config.archiver == "on":
            # Else (process, off) the archiver's own process or `chatroom archive`
            # archives, and this one measures the lag only when /metrics or /healthz
            # asks: no timer that every worker pays for while nobody looks.
            archiving = controllers.archive.run()
            self._tasks.append(asyncio.create_task(archiving, name="chatroom-archiver"))
        # Ready means subscribed: nothing acknowledged from now on can be missed here.
        await asyncio.wait_for(self.chat.listening.wait(), timeout=10)

    async def stop(self) -> None:
        """Stop accepting, close sockets with 1001, let work finish, release everything.

        In order, so that no task of ours outlives the event loop: client frames
        in flight are answered (``unavailable`` when Redis is down) while their
        sockets are open; sockets are closed (1001) and given the grace to answer; those that
        do not are dropped; their disconnects (presence cleanup) run, or are
        cancelled after a bound; then the listener and presence loops stop.
        """
        self.http.stop()
        if self.metrics_http is not None:
            self.metrics_http.stop()
        await self.chat.finish_in_flight(SHUTDOWN_IN_FLIGHT_SECONDS)
        await asyncio.sleep(0)  # the answers are flushed on the next tick, before the close
        self.chat.close_all(1001, "server shutting down")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), SHUTDOWN_GRACE_SECONDS)
        self.chat.abort_all()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), SHUTDOWN_DISCONNECTS_SECONDS)
        self.controllers.archive.stop()  # its loop ends at the next batch boundary
        self.app.settings["pinger"].stop()
        leftovers = [*self.app.settings["background_tasks"], *self._tasks]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        # Whatever presence is left (sockets whose clean-up was cancelled) goes now,
        # rather than when this process's liveness key expires.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.chat.retire_presence(), 1.0)
        await self.chat.read_markers.flush()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.http.close_all_connections(), 1.0)
        await close_redis(self.redis)
        self.run_blocking.shutdown()
        self.controllers.shutdown()  # the password and file thread pools
        self.database.close()

    async def _drain(self) -> None:
        while self.chat.connection_count or self.app.settings["background_tasks"]:
            await asyncio.sleep(0.02)


#: How often a single-process server checks that its embedded Redis and its archiver
#: process are alive.
SUPERVISE_INTERVAL_SECONDS = 1.0


async def supervise(embedded: EmbeddedRedis | None, archiver: ArchiverChild | None) -> None:
    """Restart the embedded Redis and the archiver process whenever they die
    (single-process mode; with workers, ``fork_workers``'s parent does)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
        if embedded is not None:
            try:
                await loop.run_in_executor(None, embedded.restart_if_dead)
            except Exception:
                log.exception("could not restart the embedded redis-server; retrying")
        if archiver is not None:
            try:  # on this thread: the child's parent-death signal follows its forker
                archiver.restart_if_dead()
            except Exception:
                log.exception("could not restart the archiver process; retrying")


async def run_until_signal(
    config: Config,
    redis_url: str,
    cookie_secret: str,
    sockets: list[socket.socket],
    embedded: EmbeddedRedis | None = None,
    wait_for_fsync: DurabilityWait | None = None,
    worker_index: int = 0,
    archiver: ArchiverChild | None = None,
) -> None:
    server = ChatServer(config, redis_url, cookie_secret, wait_for_fsync, worker_index)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start(sockets)
    supervisor = None
    if embedded is not None or archiver is not None:
        supervisor = asyncio.create_task(supervise(embedded, archiver))
    await stop.wait()
    log.info("stopping (pid %d)", os.getpid())
    if supervisor is not None:
        supervisor.cancel()
    if archiver is not None:
        archiver.terminate()  # it winds down while the server does; serve waits for it
    await server.stop()


def _restart_children(
    embedded: EmbeddedRedis | None, archiver: ArchiverChild | None
) -> Callable[[int], None]:
    """What the forking parent does when a child that is not a worker exits."""

    def on_child_exit(pid: int) -> None:
        if embedded is not None and embedded.owns_pid(pid):
            try:
                embedded.restart_if_dead()
            except Exception:
                log.exception("could not restart the embedded redis-server")
        if archiver is not None and archiver.owns_pid(pid):
            try:
                archiver.restart_if_dead(wait=True)
            except Exception:
                log.exception("could not restart the archiver process")

    return on_child_exit


def start_archiver(config: Config, redis_url: str, processes: int) -> ArchiverChild | None:
    """``--archiver process``: the archiver's own child process, started (else None).
    Its /metrics listens on the port after the workers' (``metrics_port + processes``)."""
    if config.archiver != "process":
        return None
    archiver = ArchiverChild(
        config, redis_url, config.metrics_port and config.metrics_port + processes
    )
    archiver.start()
    return archiver


def release_stale_locks(redis_url: str, prefix: str) -> None:
    """Drop the archiver's and retention's locks from an embedded Redis that was just
    started: it is this data directory's alone (locked above), so a lock in it is a
    previous run's, left by an archiver killed before it could release it. Without
    this the new archiver would wait for the lock to expire (15 s) before copying."""
    keys = RedisKeys(prefix)
    with redis.Redis.from_url(redis_url) as client:
        client.delete(keys.archive_lock(ARCHIVER_LOCK), keys.archive_lock(RETENTION_LOCK))


def serve(config: Config, echo=print) -> int:
    """Run ``chatroom serve`` until SIGTERM/SIGINT; returns the exit code."""
    config = config.replace(archiver=archiver_placement(config.archiver))
    data_dir = DataDirectory(config.data_dir)
    data_dir.lock()
    # Before Redis and the workers start: they inherit the raised limit.
    check_open_files(config.max_connections)
    embedded = archiver = None
    if config.uses_embedded_redis:
        fsync = "always" if config.durability == "strict" else "everysec"
        embedded = EmbeddedRedis(config.data_dir, fsync=fsync)
    try:
        cookie_secret = config.cookie_secret or data_dir.cookie_secret()
        if embedded is not None:
            embedded.start()
            release_stale_locks(embedded.url, config.redis_prefix)
        redis_url = embedded.url if embedded else config.redis_url
        wait_for_fsync = None
        if config.durability == "strict" and embedded is None:
            wait_for_fsync = strict_durability_wait(redis_url)
        if config.sharded_pubsub:
            check_sharded_pubsub(redis_url)
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
        placement = PLACEMENT_WORDS[config.archiver]
        echo(
            f"chatroom {__version__} serving on {where} "
            f"({processes} process(es), {storage}, {placement})"
        )
        sys.stdout.flush()
        # Before the workers fork: one archiver, the parent's child (a worker leaves it be).
        archiver = start_archiver(config, redis_url, processes)
        worker_index = 0
        if processes > 1:
            worker_index = fork_workers(
                processes,
                _restart_children(embedded, archiver),
                on_stop=archiver.terminate if archiver else None,
            )
            if worker_index is None:
                return 0  # the parent: every worker has exited
            # A worker: the parent supervises and stops Redis and the archiver.
            embedded = archiver = None
        asyncio.run(
            run_until_signal(
                config,
                redis_url,
                cookie_secret,
                sockets,
                embedded,
                wait_for_fsync,
                worker_index,
                archiver,
            )
        )
        return 0
    finally:
        if archiver is not None:  # before Redis: it releases its lock there
            archiver.stop()
        if embedded is not None:
            embedded.stop()
        data_dir.unlock()
