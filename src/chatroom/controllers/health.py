"""HealthController: is Redis answering, is the database answering."""

from __future__ import annotations

import asyncio

from chatroom.controllers.blocking import BlockingRunner
from chatroom.models import MessageRepository, SchemaVersion

CHECK_TIMEOUT_SECONDS = 2.0


class HealthController:
    """Checks each storage part; a part's value is "ok" or a short reason."""

    def __init__(self, run: BlockingRunner, messages: MessageRepository, archive=None) -> None:
        self._run = run
        self._messages = messages
        self._archive = archive  # [archive] an ArchiveController: its lag as a detail

    async def check(self) -> dict[str, str]:
        checks = [self._probe(self._messages.ping()), self._probe(self._run(SchemaVersion.current))]
        if self._archive is not None:  # its lag may be measured now, beside the probes
            checks.append(self._archive.health())
        redis_state, db_state, *archive = await asyncio.gather(*checks)
        ok = redis_state == db_state == "ok"
        report = {"status": "ok" if ok else "error", "redis": redis_state, "database": db_state}
        if archive:
            # A detail only: a lagging archive does not take the process out of service.
            report["archive"] = archive[0]
        return report

    @staticmethod
    async def _probe(check) -> str:
        try:
            await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            return "timeout"
        except Exception as exc:  # any failure is reported, not raised
            return type(exc).__name__
        return "ok"
