"""Who the caller is and how they authenticated: the cookie names, the Bearer header,
and ``Authenticated``, which decides it once for every handler and the WebSocket
alike (the XSRF check in views/base.py follows from it)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import tornado.httputil
import tornado.web

from chatroom.controllers.accounts import SessionInfo
from chatroom.views.proxy import apply_trusted_proxy

SESSION_COOKIE = "chatroom_session"
#: Over HTTPS the cookie is Secure and carries the __Host- prefix: the browser
#: then refuses it from plain HTTP and from any other (sub)domain.
SECURE_SESSION_COOKIE = "__Host-chatroom_session"
#: Tornado's XSRF cookie over HTTPS: Secure and __Host- prefixed, so neither plain
#: HTTP nor a sibling subdomain can set ("toss") one that the check would believe.
#: Over plain HTTP it keeps Tornado's name, ``_xsrf``.
SECURE_XSRF_COOKIE = "__Host-xsrf"


def session_cookie_name(request: tornado.httputil.HTTPServerRequest) -> str:
    return SECURE_SESSION_COOKIE if request.protocol == "https" else SESSION_COOKIE


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Credentials:
    """What a request presents to authenticate, read from its headers alone.

    ``kind`` is ``"bearer"`` (an ``Authorization: Bearer`` header, which wins),
    ``"cookie"`` (the session cookie of the request's scheme) or ``"none"``.
    ``token`` is None when there is none, or when the cookie's signature is bad or
    older than ``--session-days``.
    """

    kind: str
    token: str | None


class Authenticated(tornado.web.RequestHandler):
    """How a request authenticates: decided here, once, for every handler and the socket.

    A browser sends the cookie with any request, also one another site makes it
    send; it cannot add an ``Authorization`` header to one. So a request that
    presents the cookie must prove it comes from our own page (XSRF), one that
    presents a Bearer token need not.
    """

    #: The live session the request authenticated with, after ``authenticate()``.
    session: SessionInfo | None = None

    @functools.cached_property
    def credentials(self) -> Credentials:
        config = self.settings["config"]
        apply_trusted_proxy(self.request, config.trusted_proxy_networks)
        token = bearer_token(self)
        if token is not None:
            return Credentials("bearer", token)
        name = session_cookie_name(self.request)
        if self.get_cookie(name) is None:
            return Credentials("none", None)
        # The cookie's signed age and the session's age are the same setting.
        value = self.get_signed_cookie(name, max_age_days=config.session_days)
        return Credentials("cookie", value.decode(errors="replace") if value else None)

    @property
    def authenticated_by(self) -> str:
        """``"bearer"``, ``"cookie"`` or ``"none"``: how this request was signed in."""
        return self.credentials.kind if self.session is not None else "none"

    async def authenticate(self) -> SessionInfo | None:
        """Look the presented session up (once): live, not expired, its user enabled."""
        if self.session is None:
            auth = self.settings["controllers"].auth
            self.session = await auth.session(self.credentials.token)
        return self.session
