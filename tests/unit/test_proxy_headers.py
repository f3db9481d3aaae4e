"""Unit tests of ``apply_trusted_proxy``: X-Forwarded-For/-Proto are believed only from a
peer in ``--trusted-proxies``, and a client cannot spoof its address through them."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from chatroom.views.proxy import apply_trusted_proxy

CLIENT = "203.0.113.7"  # TEST-NET-3: the real client behind the proxies
SPOOFED = "198.51.100.66"  # TEST-NET-2: what a client claims to be


def networks(*specs: str) -> tuple:
    """``--trusted-proxies`` as ``Config.trusted_proxy_networks`` parses it."""
    return tuple(ipaddress.ip_network(spec) for spec in specs)


LOCAL = networks("127.0.0.1/32", "::1/128")
PRIVATE = networks("127.0.0.1/32", "10.0.0.0/8", "fd00::/8")


def request(peer: str | None, protocol: str = "http", **headers: str) -> HTTPServerRequest:
    """A request as Tornado's HTTP server builds it for a connection from ``peer``."""
    fields = HTTPHeaders({"Host": "chat.example"})
    for name, value in headers.items():
        fields[name.replace("_", "-")] = value
    connection = SimpleNamespace(context=SimpleNamespace(remote_ip=peer, protocol=protocol))
    return HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
        headers=fields,
        connection=connection,  # type: ignore[arg-type]
    )


def applied(req: HTTPServerRequest, trusted: tuple) -> tuple[str | None, str]:
    apply_trusted_proxy(req, trusted)
    return req.remote_ip, req.protocol


@pytest.mark.parametrize(
    ("peer", "trusted", "forwarded_for", "remote_ip"),
    [
        # One trusted proxy in front: the address it saw is the client's.
        ("127.0.0.1", LOCAL, CLIENT, CLIENT),
        # The client sent its own X-Forwarded-For; the proxy appended the real address.
        ("127.0.0.1", LOCAL, f"{SPOOFED}, {CLIENT}", CLIENT),
        ("127.0.0.1", LOCAL, f"{SPOOFED},{SPOOFED}, 10.0.0.9, {CLIENT}", CLIENT),
        # Two trusted proxies: walk back past both, stop at the first untrusted hop.
        ("127.0.0.1", PRIVATE, f"{SPOOFED}, {CLIENT}, 10.0.0.2", CLIENT),
        ("10.1.2.3", PRIVATE, f"{SPOOFED}, {CLIENT}, 10.0.0.2, 127.0.0.1", CLIENT),
        # A spoofed private address before the real one does not make it trusted.
        ("127.0.0.1", PRIVATE, f"10.0.0.5, {CLIENT}", CLIENT),
        # Every hop trusted: the farthest one is the best we know.
        ("127.0.0.1", PRIVATE, "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        # Empty and blank entries are skipped.
        ("127.0.0.1", LOCAL, f" , ,{CLIENT} , ,", CLIENT),
        # An unparseable nearest hop: keep the peer, believe nothing farther.
        ("127.0.0.1", LOCAL, f"{CLIENT}, garbage", "127.0.0.1"),
        ("127.0.0.1", LOCAL, f"{CLIENT}:4711", "127.0.0.1"),  # a port is not an address
        ("127.0.0.1", LOCAL, f"[2001:db8::1], {CLIENT}", CLIENT),
        ("127.0.0.1", LOCAL, "unknown", "127.0.0.1"),
        ("127.0.0.1", LOCAL, "", "127.0.0.1"),
        # Behind a trusted hop, garbage stops the walk at that hop.
        ("127.0.0.1", PRIVATE, f"{SPOOFED}, garbage, 10.0.0.2", "10.0.0.2"),
        # IPv6 peers, proxies and clients.
        ("::1", LOCAL, "2001:db8::7", "2001:db8::7"),
        ("::1", LOCAL, f"2001:db8::66, {CLIENT}", CLIENT),
        ("fd00::1", PRIVATE, "2001:db8::66, 2001:db8::7, fd00::2", "2001:db8::7"),
        ("127.0.0.1", LOCAL, "2001:db8::7, ::1", "2001:db8::7"),
    ],
)
def test_forwarded_for_from_a_trusted_peer(
    peer: str, trusted: tuple, forwarded_for: str, remote_ip: str
) -> None:
    req = request(peer, X_Forwarded_For=forwarded_for)
    assert applied(req, trusted) == (remote_ip, "http")


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("127.0.0.1", ()),  # no --trusted-proxies: nothing is believed
        (SPOOFED, LOCAL),
        ("127.0.0.2", LOCAL),
        ("10.0.0.1", LOCAL),
        ("2001:db8::1", LOCAL),
        ("::1", networks("127.0.0.1/32")),  # an IPv6 peer is not in an IPv4 network
        ("127.0.0.1", networks("::1/128")),
        ("::ffff:127.0.0.1", LOCAL),  # an IPv4-mapped address is a different address
        ("", LOCAL),
        (None, LOCAL),  # e.g. a Unix socket: no address at all
        ("not-an-ip", LOCAL),
    ],
)
def test_an_untrusted_peer_cannot_forge_its_address_or_https(
    peer: str | None, trusted: tuple
) -> None:
    req = request(peer, X_Forwarded_For=CLIENT, X_Forwarded_Proto="https")
    assert applied(req, trusted) == (peer, "http")


@pytest.mark.parametrize(
    ("forwarded_proto", "protocol"),
    [
        ("https", "https"),
        ("HTTPS", "https"),
        (" https ", "https"),
        ("https, http", "https"),  # the nearest proxy writes the first value
        ("http", "http"),
        ("", "http"),
        ("ftp", "http"),
        ("javascript", "http"),
        ("https;evil", "http"),
        (",https", "http"),
    ],
)
def test_forwarded_proto_from_a_trusted_peer(forwarded_proto: str, protocol: str) -> None:
    req = request("127.0.0.1", X_Forwarded_Proto=forwarded_proto)
    assert applied(req, LOCAL) == ("127.0.0.1", protocol)


def test_a_trusted_peer_may_downgrade_https_to_http() -> None:
    """TLS ends at the proxy: what it says about the client's scheme is what counts."""
    req = request("127.0.0.1", protocol="https", X_Forwarded_Proto="http")
    assert applied(req, LOCAL) == ("127.0.0.1", "http")


def test_without_forwarding_headers_a_trusted_peer_is_the_client() -> None:
    assert applied(request("127.0.0.1"), LOCAL) == ("127.0.0.1", "http")


def test_headers_are_applied_only_once_per_request() -> None:
    """Handlers may call it again (page, then WebSocket upgrade code paths): the second call
    must not walk X-Forwarded-For from the already rewritten address."""
    req = request("127.0.0.1", X_Forwarded_For=f"{SPOOFED}, 10.0.0.2")
    assert applied(req, PRIVATE) == (SPOOFED, "http")
    req.headers["X-Forwarded-Proto"] = "https"
    assert applied(req, PRIVATE) == (SPOOFED, "http")


def test_a_huge_spoofed_chain_still_yields_the_real_client() -> None:
    spoofed = ", ".join(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(8000))
    req = request("127.0.0.1", X_Forwarded_For=f"{spoofed}, {CLIENT}, 127.0.0.1")
    assert len(req.headers["X-Forwarded-For"]) > 64 * 1024
    assert applied(req, LOCAL) == (CLIENT, "http")
    chain = request("127.0.0.1", X_Forwarded_For=f"{spoofed}, {CLIENT}")
    assert applied(chain, PRIVATE) == (CLIENT, "http")


def test_repeated_forwarded_headers_are_joined_like_one_list() -> None:
    """Two X-Forwarded-For lines (a client's and the proxy's) read as one comma list."""
    req = request("127.0.0.1")
    req.headers.add("X-Forwarded-For", SPOOFED)
    req.headers.add("X-Forwarded-For", CLIENT)
    assert applied(req, LOCAL) == (CLIENT, "http")
