"""Token buckets: the per-user send limit of SPEC §3 (10 at once, 2 more per second)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; one token per action."""

    capacity: float
    rate: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def take(self, now: float | None = None) -> float:
        """Take a token: 0.0 on success, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def refund(self) -> None:
        """Give back a token taken for an action that did not happen after all."""
        self.tokens = min(self.capacity, self.tokens + 1.0)

    def is_full(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.tokens + (now - self.updated) * self.rate >= self.capacity
