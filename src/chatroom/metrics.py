"""Prometheus metrics of one process, in a registry of its own (no global state)."""

from __future__ import annotations

import prometheus_client as prom


class Metrics:
    """The counters, gauges and histograms chatroom exports at ``/metrics``."""

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = prom.Gauge(
            "chatroom_connections", "Open WebSocket connections.", registry=r
        )
        self.frames_in = prom.Counter(
            "chatroom_frames_in", "Frames received from clients, by type.", ["type"], registry=r
        )
        self.frames_out = prom.Counter(
            "chatroom_frames_out",
            "Frames written to sockets, by type (message or other event).",
            ["type"],
            registry=r,
        )
        self.messages_stored = prom.Counter(
            "chatroom_messages_stored", "Messages stored in Redis by this process.", registry=r
        )
        self.send_seconds = prom.Histogram(
            "chatroom_send_seconds",
            "Time from a send frame to its ack (validation + one Redis round trip).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.errors = prom.Counter(
            "chatroom_errors", "Error frames and responses, by code.", ["code"], registry=r
        )
        self.rate_limited = prom.Counter(
            "chatroom_rate_limited", "Sends refused by a rate limit.", registry=r
        )
        self.slow_consumers = prom.Counter(
            "chatroom_slow_consumer_drops", "Sockets closed (1013) for reading too slowly.",
            registry=r,
        )  # fmt: skip
        self.redis_reconnects = prom.Counter(
            "chatroom_redis_reconnects", "Times the event subscription was re-established.",
            registry=r,
        )  # fmt: skip

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
