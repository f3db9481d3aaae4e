"""Origins compared as (scheme, host, port): which browser pages may open the socket."""

from __future__ import annotations

from urllib.parse import urlsplit

#: The port an origin means when it names none.
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """An origin as (scheme, host, port), lowercased, the default port filled in.

    None for anything that is not ``http(s)://host[:port]``: ``null``, a path,
    credentials, another scheme, a bad port.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    return scheme, parts.hostname.lower(), DEFAULT_PORTS[scheme] if port is None else port
