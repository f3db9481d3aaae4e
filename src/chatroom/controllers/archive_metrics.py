"""ArchiveMetrics: the archiver's Prometheus series (docs/archive.md, "Watching it")."""

from __future__ import annotations

import prometheus_client as prom

from chatroom.metrics import Metrics


class ArchiveMetrics:
    """What the archiver counts and measures, in the process's registry."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        registry = (metrics or Metrics()).registry
        self.archived = prom.Counter(
            "chatroom_archived_messages", "Messages this process copied to the SQL archive.",
            registry=registry,
        )  # fmt: skip
        self.lost = prom.Counter(
            "chatroom_archive_lost_messages",
            "Messages trimmed from Redis before the archive had them (the backlog cap).",
            registry=registry,
        )
        self.lag_messages = prom.Gauge(
            "chatroom_archive_lag_messages", "Messages in Redis not yet in the SQL archive.",
            registry=registry,
        )  # fmt: skip
        self.lag_seconds = prom.Gauge(
            "chatroom_archive_lag_seconds", "Age of the oldest message not yet archived.",
            registry=registry,
        )  # fmt: skip
        self.counter_resets = prom.Counter(
            "chatroom_archive_counter_resets",
            "Rooms whose Redis counter was below the archive's highest id (Redis restored "
            "from an older snapshot) and was raised to it.",
            registry=registry,
        )
        self.failures = prom.Counter(
            "chatroom_archive_failures", "Archiver passes that failed (database or Redis down).",
            registry=registry,
        )  # fmt: skip
