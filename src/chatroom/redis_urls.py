"""Which Redis a ``--redis-url`` names: one server, a Sentinel-managed master, or a
Cluster (SPEC §8). Parsed once, when the settings are checked, so that a bad URL
stops ``chatroom serve`` with a clear message instead of failing on first use.

- ``redis://``, ``rediss://``, ``unix://``: one Redis (redis-py's own URL forms);
- ``redis+sentinel://[user:password@]host:26379,host2:26379/<master-name>[/db]``;
- ``redis+cluster://[user:password@]host:7000,host2:7001`` (a cluster has one
  database: a ``/db`` is refused).

The password is the data nodes' (``requirepass``/ACL); Sentinels that need one
of their own take ``?sentinel_password=...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from chatroom.settings import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
#: The ports a node of each kind listens on when its URL names none.
DEFAULT_PORTS = {SENTINEL_SCHEME: 26379, CLUSTER_SCHEME: 6379}
_HOST_RE = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?\Z"
)
_MASTER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}\Z")


@dataclass(frozen=True)
class RedisTarget:
    """A parsed ``--redis-url``: ``kind`` is ``single``, ``sentinel`` or ``cluster``."""

    kind: str
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def replicated(self) -> bool:
        """Sentinel or Cluster: the data has replicas, and a failover can happen."""
        return self.kind != "single"


def parse_redis_url(url: str) -> RedisTarget:
    """The ``RedisTarget`` of ``url``; ``ConfigError`` naming what is wrong with it."""
    scheme, _, rest = url.partition("://")
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return RedisTarget("single", url)
    kind = "sentinel" if scheme == SENTINEL_SCHEME else "cluster"
    rest, _, query = rest.partition("?")
    params = parse_qs(query, keep_blank_values=True)
    username = password = None
    if "@" in rest:  # hosts and master names hold no "@": the last one ends the password
        userinfo, _, rest = rest.rpartition("@")
        name, colon, secret = userinfo.partition(":")
        username = unquote(name) or None
        password = unquote(secret) if colon else None
    hosts, _, path = rest.partition("/")
    nodes = tuple(_node(part, DEFAULT_PORTS[scheme], url) for part in hosts.split(","))
    segments = [s for s in path.split("/") if s] if path else []
    master, db = None, 0
    if kind == "cluster":
        if segments:
            raise ConfigError(
                "a Redis Cluster has one database: redis+cluster:// takes no /db "
                f"(got /{'/'.join(segments)})"
            )
    else:
        if not segments or len(segments) > 2:
            raise ConfigError(
                "redis+sentinel:// needs the master's name: "
                "redis+sentinel://host:26379,host2:26379/<master-name>[/db]"
            )
        master = segments[0]
        if not _MASTER_RE.match(master):
            raise ConfigError(f"malformed Sentinel master name {master!r}")
        if len(segments) == 2:
            if not segments[1].isdigit() or int(segments[1]) > 65535:
                raise ConfigError(
                    f"the database of {scheme}:// must be a number, not {segments[1]!r}"
                )
            db = int(segments[1])
    sentinel_password = params.get("sentinel_password", [None])[0]
    unknown = set(params) - {"sentinel_password"}
    if unknown:
        raise ConfigError(f"unknown parameter(s) in --redis-url: {', '.join(sorted(unknown))}")
    return RedisTarget(kind, url, nodes, master, db, username, password, sentinel_password)


def _node(text: str, default_port: int, url: str) -> tuple[str, int]:
    match = _HOST_RE.match(text.strip())
    if match is None:
        raise ConfigError(f"malformed host {text!r} in --redis-url (host[:port], [v6]:port)")
    port = int(match["port"] or default_port)
    if not 1 <= port <= 65535:
        raise ConfigError(f"port {port} out of range in --redis-url")
    return (match["v6"] or match["name"], port)
