"""``GET /metrics`` on its own listener (``--metrics-port``): Prometheus exposition text,
the archive's lag measured first where no archiver loop keeps it current."""

from __future__ import annotations

import tornado.web

from chatroom.controllers.archive import ArchiveController
from chatroom.metrics import Metrics


class MetricsHandler(tornado.web.RequestHandler):
    """Serves this process's metrics; kept off the public port on purpose."""

    def initialize(self, metrics: Metrics, archive: ArchiveController | None) -> None:
        self.metrics = metrics
        self.archive = archive

    async def get(self) -> None:
        if self.archive is not None:
            # The lag gauges, measured now where no archiver loop keeps them current
            # (rendering is synchronous: they are set before it).
            await self.archive.fresh_lag()
        body, content_type = self.metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def make_metrics_app(
    metrics: Metrics, archive: ArchiveController | None = None
) -> tornado.web.Application:
    """The metrics listener's app; with ``archive``, its lag is refreshed per scrape."""
    return tornado.web.Application(
        [(r"/metrics", MetricsHandler, {"metrics": metrics, "archive": archive})]
    )
