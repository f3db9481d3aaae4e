"""``GET /metrics`` on its own listener (``--metrics-port``): Prometheus exposition text."""

from __future__ import annotations

import tornado.web

from chatroom.metrics import Metrics


class MetricsHandler(tornado.web.RequestHandler):
    """Serves this process's metrics; kept off the public port on purpose."""

    def initialize(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def get(self) -> None:
        body, content_type = self.metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def make_metrics_app(metrics: Metrics) -> tornado.web.Application:
    return tornado.web.Application([(r"/metrics", MetricsHandler, {"metrics": metrics})])
