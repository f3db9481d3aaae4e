"""The one settings object: every option of ``chatroom serve``, validated once.

``Config`` is the table of settings, one ``setting(...)`` each, kept whole on
purpose (docs/architecture.md); how a ``setting`` is declared, checked and
listed lives in settings.py."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from chatroom.redaction import REDACTED, redact_url
from chatroom.redis_urls import parse_redis_url
from chatroom.settings import (
    ConfigError,
    Setting,
    comma_list,
    registry_of,
    setting,
)

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
#: [issue 16] sharded: in a Redis Cluster each room's events go on its own shard
#: channel; classic: every event on one channel (docs/redis.md, "The event bus in a Cluster").
CLUSTER_PUBSUB_MODES = ("sharded", "classic")
#: [issue 17] rooms: with one Redis or Sentinel each room's events go on its own
#: channel; one: every event on one channel (docs/redis.md, "Per-room channels").
PUBSUB_CHANNEL_MODES = ("rooms", "one")
#: text: one human-readable line per event; json: one JSON object per line.
LOG_FORMATS = ("text", "json")
#: open: anyone may register; invite: registering needs an invite code; closed: only
#: ``chatroom users create`` makes accounts (SPEC §6, docs/configuration.md#registration).
REGISTRATION_MODES = ("open", "invite", "closed")
#: process: ``serve`` runs the archiver in one child process of its own; on: every
#: serving process takes part in archiving; off: only ``chatroom archive`` processes
#: do; auto: process where serve may use two CPUs or more, else on
#: (docs/archive.md#where-the-archiver-runs).
ARCHIVER_MODES = ("auto", "process", "on", "off")
#: The longest a session may last (--session-days): ten years.
MAX_SESSION_DAYS = 3650

# -- fixed limits: not settings, but each named once here for every module ----------

#: The largest ``history_size``; operator exports read this many, whatever the server's.
MAX_HISTORY_SIZE = 100_000


@dataclass(frozen=True)
class Config:
    """Every setting of a chatroom server, the registry of them all.

    Each field is a ``setting(...)``; ``chatroom serve --help`` lists them in this
    order, and docs/configuration.md has a section for each.
    """

    data_dir: Path = setting(  # noqa: RUF009 - a field(), like the others
        default_factory=default_data_dir,
        help="Where the SQLite database, the embedded Redis files and the cookie secret live.",
    )
    database_url: str | None = setting(
        None,
        show_default="SQLite in the data directory",
        help="sqlite:///path, postgresql://user:pass@host/db or mysql://user:pass@host/db.",
    )
    host: str = setting("127.0.0.1", help="Address to listen on (0.0.0.0: every interface).")
    port: int = setting(8888, min=1, max=65535, help="TCP port to listen on.")
    redis_url: str | None = setting(
        None,
        show_default="an embedded redis-server in the data directory",
        help="redis://host:port/db of an external Redis (needed for several hosts); "
        "redis+sentinel://h1:26379,h2:26379/<master>[/db] or redis+cluster://h1:7000,h2:7001.",
    )
    redis_prefix: str = setting("chatroom", help="Prefix of every Redis key, to share one Redis.")
    redis_failover_timeout: float | None = setting(
        None,
        min=0.5,
        max=600,
        show_default="30 with Sentinel or Cluster, 3 with one Redis",
        help="Seconds a send keeps retrying while Redis does not answer (a failover, a "
        "restart) before it is answered unavailable.",
    )
    cluster_pubsub: str = setting(
        "sharded",
        choices=CLUSTER_PUBSUB_MODES,
        help="With redis+cluster://: sharded: each room's events on its own shard channel, "
        "only to the hosts with a member in it (Redis >= 7); classic: every event to every "
        "host. Every host of a chat must use the same.",
    )
    pubsub_channels: str = setting(
        "rooms",
        choices=PUBSUB_CHANNEL_MODES,
        help="With one Redis or Sentinel: rooms: each room's events on its own channel, "
        "received only by the processes with a member in it; one: every event to every "
        "process. Every process of a chat must use the same.",
    )
    history_size: int = setting(100, min=1, max=MAX_HISTORY_SIZE, help="Messages kept per room.")
    processes: int = setting(1, min=0, help="Worker processes; 0: one per CPU.")
    allowed_origins: tuple[str, ...] = setting(
        (),
        parse=comma_list,
        help="Comma-separated extra origins (https://host[:port]) allowed on the WebSocket.",
    )
    cookie_secret: str | None = setting(
        None,
        show_default="generated once into DATA_DIR/cookie_secret",
        help="Secret that signs cookies; hosts serving one chat must share it.",
    )
    max_message_chars: int = setting(4000, min=1, help="Longest message text.")
    max_frame_bytes: int = setting(
        64 * 1024,
        min=1024,
        help="Largest WebSocket frame; a larger one closes the socket with 1009.",
    )
    max_body_bytes: int = setting(
        1024 * 1024, min=1024, help="Largest HTTP request body; a larger one gets 413."
    )
    max_queued_bytes: int = setting(
        1024 * 1024,
        min=1024,
        help="Bytes waiting to be sent to one socket before it is closed as too slow (1013).",
    )
    max_queued_frames: int = setting(
        1000,
        min=10,
        help="Frames waiting to be sent to one socket before it is closed as too slow (1013).",
    )
    metrics_port: int = setting(
        0,
        min=0,
        max=65535,
        show_default="0: off",
        help="Serve Prometheus /metrics on this port (worker N of --processes: port + N).",
    )
    metrics_host: str = setting("127.0.0.1", help="Address of the /metrics listener.")
    log_format: str = setting(
        "text", choices=LOG_FORMATS, help="text: readable lines; json: one JSON object per line."
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        parse=comma_list,
        help="Comma-separated proxy addresses/networks whose X-Forwarded-Proto/-For are believed.",
    )
    durability: str = setting(
        "fast",
        choices=DURABILITY_LEVELS,
        help="fast: Redis fsyncs every second; strict: acknowledge only fsynced messages.",
    )
    auth_burst: int = setting(
        20, min=1, help="Login/register attempts one client address may make at once."
    )
    auth_per_minute: float = setting(
        20.0,
        min=0,
        min_open=True,
        help="Login/register attempts per minute one client address may sustain.",
    )
    send_burst: int = setting(
        10, min=1, help="Messages a user may send at once (the token bucket's size)."
    )
    send_per_second: float = setting(
        2.0,
        min=0,
        min_open=True,
        help="Messages per second a user may sustain (the token bucket's refill).",
    )
    max_connections: int = setting(
        10_000,
        min=1,
        help="WebSockets one process holds at most; more are refused (503) before the "
        "upgrade. The open-files limit is raised to fit them at start, or a warning says why not.",
    )
    max_sockets_per_user: int = setting(
        20,
        min=1,
        help="WebSockets one user may hold open at once, across all processes; more are "
        "closed with 1008.",
    )
    rooms_per_hour: int = setting(
        10,
        min=1,
        help="Rooms one user may create per hour (also the burst); more are refused with 429.",
    )
    joins_per_minute: int = setting(
        60,
        min=1,
        help="join frames one socket may send per minute (also the burst); more get rate_limited.",
    )
    session_days: float = setting(
        30.0,
        min=0,
        min_open=True,
        max=MAX_SESSION_DAYS,
        help="A login (cookie or Bearer token) ends this many days after it began.",
    )
    registration: str = setting(
        "open",
        choices=REGISTRATION_MODES,
        help="Who may register: open (anyone), invite (with an invite code), closed "
        "(only 'chatroom users create').",
    )
    stall_seconds: float = setting(
        10.0,
        min=0,
        min_open=True,
        help="Seconds written data may stay unacknowledged before the socket is closed (1013).",
    )
    ping_interval: float = setting(
        25.0,
        min=0,
        min_open=True,
        help="Seconds between the server's WebSocket pings.",
    )
    ping_timeout: float = setting(
        10.0,
        min=0,
        min_open=True,
        help="Seconds a pong may take before the socket is closed; at most --ping-interval.",
    )
    # -- files (issue 15, SPEC §9) --
    files_dir: Path | None = setting(  # noqa: RUF009 - a field(), like the others
        None,
        show_default="DATA_DIR/files",
        help="Where uploaded files are stored (several hosts: a shared directory, or --files-url).",
    )
    files_url: str | None = setting(
        None,
        show_default="none: files are stored in --files-dir",
        help="s3://bucket/prefix[?endpoint=URL&region=R]: store uploads in S3-compatible "
        "storage (credentials from the AWS_* variables).",
    )
    max_upload_bytes: int = setting(
        10 * 1024 * 1024, min=1, help="Largest uploaded file, in bytes; a larger one gets 413."
    )
    uploads_per_minute: int = setting(
        20, min=1, help="Files one user may upload per minute (also the burst); more get 429."
    )
    upload_idle_seconds: float = setting(
        30.0,
        min=0,
        min_open=True,
        help="An upload that sends nothing for this long is cut off and its partial file removed.",
    )
    db_threads: int = setting(8, min=1, help="Threads for SQL queries (hashes: --hash-threads).")
    hash_threads: int = setting(
        2, min=1, max=64, help="Threads hashing passwords (argon2id, 19 MiB each while it runs)."
    )
    archive_backlog: int = setting(
        100_000,
        min=0,
        help="Most messages a room keeps in Redis while the SQL archive is behind "
        "(0: no limit); past it the oldest unarchived ones are dropped.",
    )
    retention_days: float = setting(
        0.0, min=0, help="Delete messages older than this many days (0: keep forever)."
    )
    archiver: str = setting(
        "auto",
        choices=ARCHIVER_MODES,
        help="Who copies messages to SQL and applies retention: process: one child process "
        "of this server (metrics on --metrics-port + processes); on: the serving processes "
        "(one at a time); off: 'chatroom archive' processes; auto: process with two CPUs "
        "or more, on with one.",
    )
    default_locale: str = setting(
        SOURCE_LOCALE,
        choices=available_locales,
        help="UI language when neither the user's choice nor the browser's languages match one.",
    )
    edit_window: float = setting(
        0.0, min=0, help="Seconds after sending that a message may be edited (0: any time)."
    )
    debug: bool = setting(False, help="Reload templates, verbose logs; not for production.")

    def __repr__(self) -> str:
        # The dataclass repr would show the database password and the cookie secret.
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        for name in ("database_url", "redis_url"):
            if shown[name] is not None:
                shown[name] = redact_url(shown[name])
        if shown["cookie_secret"] is not None:
            shown["cookie_secret"] = REDACTED
        return f"Config({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.files_dir is not None:
            object.__setattr__(self, "files_dir", Path(self.files_dir).expanduser())
        origins = tuple(o.strip().rstrip("/") for o in self.allowed_origins if o.strip())
        object.__setattr__(self, "allowed_origins", origins)
        for entry in settings():
            entry.check(getattr(self, entry.name))
        # What one setting's range cannot say: formats and relations between settings.
        if self.redis_url is not None:
            parse_redis_url(self.redis_url)  # a malformed Sentinel/Cluster URL stops here
        if not _PREFIX_RE.match(self.redis_prefix):
            raise ConfigError("redis_prefix may hold letters, digits and _.:- (1..64 characters)")
        if 0 < self.archive_backlog < self.history_size:
            raise ConfigError("archive_backlog must be 0 (no limit) or >= history_size")
        if self.max_queued_bytes < self.max_frame_bytes:
            raise ConfigError("max_queued_bytes must be >= max_frame_bytes")
        if self.ping_timeout > self.ping_interval:
            raise ConfigError("ping_timeout must be at most ping_interval")
        try:
            self.trusted_proxy_networks  # noqa: B018 - parsed once here to validate
        except ValueError as exc:
            raise ConfigError(f"trusted proxies must be IP addresses or networks: {exc}") from None
        if self.files_url is not None and not re.match(r"^s3://[^/?#\s]+", self.files_url):
            raise ConfigError("files_url must look like s3://bucket/prefix")
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
    def effective_redis_failover_timeout(self) -> float:
        """How long a send retries while Redis does not answer: the setting, else 30 s
        where a failover can happen (Sentinel, Cluster) and 3 s with one Redis."""
        if self.redis_failover_timeout is not None:
            return self.redis_failover_timeout
        replicated = self.redis_url is not None and parse_redis_url(self.redis_url).replicated
        return 30.0 if replicated else 3.0

    @property
    def sharded_pubsub(self) -> bool:
        """[issue 16] Whether rooms' events go on their shard channels: a Cluster with
        ``cluster_pubsub`` sharded (one Redis and Sentinel keep the one classic channel)."""
        url = self.redis_url
        return (
            self.cluster_pubsub == "sharded"
            and url is not None
            and parse_redis_url(url).kind == "cluster"
        )

    @property
    def room_pubsub(self) -> bool:
        """[issue 17] Whether rooms' events go on classic channels of their own: one Redis
        (embedded or not) or Sentinel with ``pubsub_channels`` rooms."""
        url = self.redis_url
        return self.pubsub_channels == "rooms" and (
            url is None or parse_redis_url(url).kind != "cluster"
        )

    @property
    def effective_database_url(self) -> str:
        """The database URL to open: the given one, else SQLite in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'chatroom.db'}"

    @property
    def effective_files_dir(self) -> Path:
        """Where uploads are stored (or staged, with --files-url): the given one, else
        ``files`` in the data directory."""
        return self.files_dir or self.data_dir / "files"

    def replace(self, **changes: object) -> Config:
        """A copy with some fields changed (the original stays frozen)."""
        return dataclasses.replace(self, **changes)


def settings() -> tuple[Setting, ...]:
    """The registry: every ``Config`` field's ``Setting``, in field order."""
    return registry_of(Config)
