"""How an operator command (``chatroom rooms|users|history|stats``) runs: which Redis
it uses, the schema brought up to date, and one ``AdminController`` action under
``asyncio.run``; the composition root of those commands, as ``server`` is of ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from chatroom.archive_wiring import make_files_controller
from chatroom.config import Config
from chatroom.controllers import BlockingRunner
from chatroom.controllers.admin import AdminController
from chatroom.controllers.files import FilesController
from chatroom.controllers.signup import SignupController
from chatroom.datadir import DataDirectory
from chatroom.embedded_redis import EmbeddedRedis
from chatroom.models import open_database
from chatroom.storage import close_redis, initialise_database, make_redis, running_server_redis
from chatroom.wiring import build_controllers

T = TypeVar("T")


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
        yield running_server_redis(EmbeddedRedis(config.data_dir))
        return
    try:
        with EmbeddedRedis(config.data_dir) as embedded:
            yield embedded.url
    finally:
        data_dir.unlock()


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
    admin = build_controllers(config, redis, run_blocking).admin
    try:
        async with operator_database(config, run_blocking):
            return await action(admin)
    finally:
        await close_redis(redis)
        run_blocking.shutdown()


@contextlib.asynccontextmanager
async def operator_database(config: Config, run_blocking: BlockingRunner) -> AsyncIterator[None]:
    """The database of an operator command, open while it runs; like serve, the schema
    is brought up to date first, and lobby exists."""
    await run_blocking(initialise_database, config)
    database = open_database(config.effective_database_url)
    try:
        yield
    finally:
        await run_blocking(database.close)


def run_files(config: Config, action: Callable[[FilesController], Awaitable[T]]) -> T:
    """Run one operator action on the uploaded files of ``config`` (no Redis needed)."""
    return asyncio.run(_run_files(config, action))


async def _run_files(config: Config, action: Callable[[FilesController], Awaitable[T]]) -> T:
    run_blocking = BlockingRunner(1, name="chatroom-admin")
    files = make_files_controller(config, run_blocking, rooms=None)  # no users here
    try:
        async with operator_database(config, run_blocking):
            return await action(files)
    finally:
        files.shutdown()
        run_blocking.shutdown()


def run_invites(config: Config, action: Callable[[SignupController], Awaitable[T]]) -> T:
    """Run one operator action on the invite codes of ``config`` (SQL only, no Redis)."""
    return asyncio.run(_run_invites(config, action))


async def _run_invites(config: Config, action: Callable[[SignupController], Awaitable[T]]) -> T:
    run_blocking = BlockingRunner(1, name="chatroom-admin")
    try:
        async with operator_database(config, run_blocking):
            return await action(SignupController(run_blocking, None))
    finally:
        run_blocking.shutdown()
