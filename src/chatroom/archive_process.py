"""The composition root of ``chatroom archive``: the archiver (and retention) in a
process of its own, on the Redis and database the servers use, until a signal.

``chatroom serve --archiver process`` (the default with two CPUs) runs one as its child
(archiver_child.py); servers run with ``--archiver off`` leave the work to such
processes run beside them (docs/archive.md#where-the-archiver-runs).
The archiver takes its Redis lock as in a server, so several such processes (or
servers with ``--archiver on``) can run at once: one of them works at a time.
It builds only the archive's part of the controllers (archive_wiring.py), and
imports Tornado only to serve its /metrics (docs/archive.md#its-memory).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from chatroom.archive_wiring import ArchiveGraph
from chatroom.config import Config, redact_url
from chatroom.controllers.blocking import BlockingRunner
from chatroom.datadir import DataDirectory, DataDirError
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import open_database
from chatroom.storage import close_redis, initialise_database, make_redis, running_server_redis

if TYPE_CHECKING:
    import tornado.httpserver

log = logging.getLogger("chatroom")

#: How long a stop waits for the pass in hand (its batches committed, their
#: watermarks raised, the lock released) before it gives up on it: what is not
#: committed is copied again by the next archiver.
STOP_GRACE_SECONDS = 30.0


def archive_redis_url(config: Config) -> str:
    """The Redis to archive from: ``--redis-url``, else the embedded Redis of the
    running server that holds the data directory (an archiver does not start one)."""
    if config.redis_url is not None:
        return config.redis_url
    data_dir = DataDirectory(config.data_dir)
    if data_dir.try_lock():
        data_dir.unlock()
        raise DataDirError(
            f"no chatroom server is using {config.data_dir}: start 'chatroom serve' first "
            "(its embedded Redis holds the messages), or pass --redis-url"
        )
    return running_server_redis(EmbeddedRedis(config.data_dir))


def run_archiver(config: Config, echo=print) -> int:
    """Run ``chatroom archive`` until SIGTERM/SIGINT; returns the exit code."""
    redis_url = archive_redis_url(config)
    initialise_database(config)
    where = redact_url(config.effective_database_url)
    echo(f"chatroom archive: from {redact_url(redis_url)} to {where} (pid {os.getpid()})")
    sys.stdout.flush()
    asyncio.run(_archive_until_signal(config, redis_url))
    return 0


def _serve_metrics(
    config: Config, controllers: ArchiveGraph
) -> tornado.httpserver.HTTPServer | None:
    """The archiver's /metrics on ``metrics_port``, or None where it cannot listen.

    Tornado is imported here, only when there is a port to serve."""
    import tornado.httpserver

    from chatroom.views.metrics import make_metrics_app

    metrics_http = tornado.httpserver.HTTPServer(
        make_metrics_app(controllers.metrics, controllers.archive)
    )
    try:
        metrics_http.listen(config.metrics_port, config.metrics_host)
    except OSError as exc:  # archiving matters more than its metrics: go on without
        log.warning("archiver metrics not served on port %d: %s", config.metrics_port, exc)
        return None
    return metrics_http


async def _archive_until_signal(config: Config, redis_url: str) -> None:
    # The signals are taken first: one that comes while the archiver is being set
    # up (serve stopped at once) stops it in order too, not by the default action.
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signalled.set)
    database = open_database(config.effective_database_url)
    redis = make_redis(redis_url)
    run_blocking = BlockingRunner(config.db_threads)
    controllers = ArchiveGraph(config, redis, run_blocking)  # the archive's part alone
    archive = controllers.archive
    metrics_http = _serve_metrics(config, controllers) if config.metrics_port else None
    task = asyncio.create_task(archive.run(), name="chatroom-archiver")

    async def stop_on_signal() -> None:
        await signalled.wait()
        # The pass in hand finishes (then ``run`` releases the lock); one that hangs
        # (a database that does not answer) is cancelled after the grace.
        archive.stop()
        loop.call_later(STOP_GRACE_SECONDS, task.cancel)

    stopper = asyncio.create_task(stop_on_signal(), name="chatroom-archiver-stop")
    try:
        await asyncio.gather(task, return_exceptions=True)
    finally:
        stopper.cancel()
        log.info("archiver stopping (pid %d)", os.getpid())
        if metrics_http is not None:
            metrics_http.stop()
        await close_redis(redis)  # a Cluster's client has no single connection pool
        run_blocking.shutdown()
        controllers.shutdown()
        database.close()
