"""``X-Forwarded-Proto``/``-For`` believed only from the proxies in ``--trusted-proxies``."""

from __future__ import annotations

import ipaddress
import logging

import tornado.httputil

log = logging.getLogger(__name__)


def apply_trusted_proxy(
    request: tornado.httputil.HTTPServerRequest, trusted: tuple, notices: set[str] | None = None
) -> None:
    """Believe X-Forwarded-Proto/-For, but only from a peer in ``--trusted-proxies``.

    Anyone else could forge them to look like HTTPS or like another address. A
    forwarded request from an untrusted peer is logged once (per ``notices`` set,
    one per process): it usually means a proxy in front without ``--trusted-proxies``,
    which makes every client one address to the login throttle.
    """
    if getattr(request, "_chatroom_proxied", False):
        return
    try:
        peer = ipaddress.ip_address(request.remote_ip)
    except ValueError:
        peer = None
    if peer is None or not any(peer in network for network in trusted):
        forwarded = "X-Forwarded-For" in request.headers
        if forwarded and notices is not None and "untrusted-forward" not in notices:
            notices.add("untrusted-forward")
            log.warning(
                "ignoring X-Forwarded-For from %s, which is not in --trusted-proxies: "
                "if it is your reverse proxy, every client looks like %s to the login "
                "throttle; set --trusted-proxies (logged once)",
                request.remote_ip,
                request.remote_ip,
            )
        return
    request._chatroom_proxied = True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        request.protocol = proto
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):  # the nearest hop not itself a trusted proxy is the client
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            break
        request.remote_ip = hop
        if not any(address in network for network in trusted):
            break
