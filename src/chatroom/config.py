"""The one settings object: every option of ``chatroom serve``, validated once."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value chatroom cannot run with."""


#: Translations of the browser UI, one ``<locale>.csv`` each (Tornado's CSV format).
LOCALE_DIR = Path(__file__).parent / "locale"
#: The language the UI is written in; it needs no translation file.
SOURCE_LOCALE = "en_US"


def available_locales() -> tuple[str, ...]:
    """The UI languages: the source language and every translation shipped in ``locale/``."""
    found = {path.stem for path in LOCALE_DIR.glob("*.csv")}
    return tuple(sorted(found | {SOURCE_LOCALE}))


def default_data_dir() -> Path:
    """The per-user data directory (XDG convention): ``~/.local/share/chatroom``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "chatroom"


_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")


#: fast: Redis fsyncs its AOF every second; strict: a message is acknowledged only
#: once it is fsynced (see docs/configuration.md#durability).
DURABILITY_LEVELS = ("fast", "strict")
#: text: one human-readable line per event; json: one JSON object per line.
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Config:
    """Every setting of a chatroom server; see docs/configuration.md for each field."""

    host: str = "127.0.0.1"
    port: int = 8888
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "chatroom"
    history_size: int = 100
    processes: int = 1
    allowed_origins: tuple[str, ...] = ()
    debug: bool = False
    cookie_secret: str | None = None
    max_message_chars: int = 4000
    max_frame_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    max_queued_bytes: int = 1024 * 1024
    max_queued_frames: int = 1000
    stall_seconds: float = 10.0
    ping_interval: float = 25.0
    ping_timeout: float = 10.0
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    durability: str = "fast"
    trusted_proxies: tuple[str, ...] = ()
    auth_burst: int = 20
    auth_per_minute: float = 20.0
    send_burst: int = 10
    send_per_second: float = 2.0
    db_threads: int = 8
    default_locale: str = SOURCE_LOCALE

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        origins = tuple(o.strip().rstrip("/") for o in self.allowed_origins if o.strip())
        object.__setattr__(self, "allowed_origins", origins)
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1..65535, not {self.port}")
        if not 1 <= self.history_size <= 100_000:
            raise ConfigError(f"history_size must be 1..100000, not {self.history_size}")
        if self.processes < 0:
            raise ConfigError(f"processes must be 0 (one per CPU) or more, not {self.processes}")
        if not _PREFIX_RE.match(self.redis_prefix):
            raise ConfigError("redis_prefix may hold letters, digits and _.:- (1..64 characters)")
        if self.max_message_chars < 1 or self.max_frame_bytes < 1024:
            raise ConfigError("max_message_chars must be >= 1 and max_frame_bytes >= 1024")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if self.max_queued_bytes < self.max_frame_bytes or self.max_queued_frames < 10:
            raise ConfigError(
                "max_queued_bytes must be >= max_frame_bytes, max_queued_frames >= 10"
            )
        if self.stall_seconds <= 0:
            raise ConfigError(f"stall_seconds must be > 0, not {self.stall_seconds}")
        if not 0 < self.ping_timeout <= self.ping_interval:
            raise ConfigError(
                "ping_interval and ping_timeout must be > 0, the timeout at most the interval"
            )
        try:
            self.trusted_proxy_networks  # noqa: B018 - parsed once here to validate
        except ValueError as exc:
            raise ConfigError(f"trusted proxies must be IP addresses or networks: {exc}") from None
        if not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"metrics_port must be 0 (off) or 1..65535, not {self.metrics_port}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
        if self.durability not in DURABILITY_LEVELS:
            raise ConfigError(f"durability must be one of {', '.join(DURABILITY_LEVELS)}")
        if self.auth_burst < 1 or self.auth_per_minute <= 0:
            raise ConfigError("auth_burst must be >= 1 and auth_per_minute > 0")
        if self.send_burst < 1 or self.send_per_second <= 0:
            raise ConfigError("send_burst must be >= 1 and send_per_second > 0")
        if self.db_threads < 1:
            raise ConfigError("db_threads must be at least 1")
        if self.default_locale not in available_locales():
            languages = ", ".join(available_locales())
            raise ConfigError(
                f"default_locale must be one of {languages}, not {self.default_locale!r}"
            )
        for origin in self.allowed_origins:
            if not re.match(r"^https?://[^/\s]+\Z", origin):
                raise ConfigError(f"allowed origin {origin!r} must look like https://host[:port]")

    @functools.cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed (validated in ``__post_init__``)."""
        return tuple(ipaddress.ip_network(p.strip()) for p in self.trusted_proxies)

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def effective_database_url(self) -> str:
        """The database URL to open: the given one, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'chatroom.db'}"

    def replace(self, **changes: object) -> Config:
        """A copy with some fields changed (the original stays frozen)."""
        return dataclasses.replace(self, **changes)
