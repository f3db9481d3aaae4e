"""Runs blocking calls (Peewee queries, password hashing) off the event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import peewee

from chatroom.controllers.errors import UnavailableError

T = TypeVar("T")

log = logging.getLogger(__name__)


class BlockingRunner:
    """A bounded thread pool; ``await runner(fn, *args)`` runs ``fn`` in it.

    Database failures surface as ``UnavailableError`` so callers answer
    ``unavailable`` instead of crashing.
    """

    def __init__(self, threads: int, name: str = "chatroom-db") -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            # The driver's words (hosts, ports, SQL) are for the log, never for clients.
            log.warning("database unavailable: %s", exc)
            raise UnavailableError("the database is unavailable; try again shortly") from exc

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
