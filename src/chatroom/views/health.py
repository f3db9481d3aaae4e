"""``GET /healthz``: 200 when Redis and the database answer, else 503 naming the part
(and the archive's lag as a detail, measured now where no archiver loop keeps it)."""

from __future__ import annotations

from chatroom.views.base import JsonHandler


class HealthHandler(JsonHandler):
    async def prepare(self) -> None:
        pass  # no session lookup: health must answer even when the database does not

    async def get(self) -> None:
        report = await self.controllers.health.check()
        self.send_json(report, status=200 if report["status"] == "ok" else 503)
