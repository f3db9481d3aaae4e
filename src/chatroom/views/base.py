"""BaseHandler: who is signed in, JSON in and out, and errors rendered for humans or scripts.

``Authenticated`` decides how a request authenticates, for every handler and the
WebSocket alike; the XSRF check follows from it.
"""

from __future__ import annotations

import functools
import http
import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Any

import orjson
import tornado.httputil
import tornado.locale
import tornado.web

from chatroom.controllers import Account, ChatError
from chatroom.controllers.accounts import SessionInfo
from chatroom.controllers.errors import BadRequestError, RateLimitedError

log = logging.getLogger(__name__)

SESSION_COOKIE = "chatroom_session"
#: Over HTTPS the cookie is Secure and carries the __Host- prefix: the browser
#: then refuses it from plain HTTP and from any other (sub)domain.
SECURE_SESSION_COOKIE = "__Host-chatroom_session"
#: Tornado's XSRF cookie over HTTPS: Secure and __Host- prefixed, so neither plain
#: HTTP nor a sibling subdomain can set ("toss") one that the check would believe.
#: Over plain HTTP it keeps Tornado's name, ``_xsrf``.
SECURE_XSRF_COOKIE = "__Host-xsrf"
#: The UI language the user picked with the language switch (a locale code such as zh_CN).
LOCALE_COOKIE = "locale"
#: Pages may load scripts and styles from this origin only: no inline script anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def accept_languages(header: str) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first."""
    weighted = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag.strip() and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def closest_locale(wanted: list[str], default: str) -> str:
    """The first supported locale among ``wanted``; ``zh``/``zh-Hans`` match ``zh_CN``."""
    supported = sorted(tornado.locale.get_supported_locales())
    for tag in filter(None, wanted):
        language, _, region = tag.replace("-", "_").partition("_")
        code = f"{language.lower()}_{region.upper()}" if region else language.lower()
        if code in supported:
            return code
        same_language = [s for s in supported if s.split("_")[0] == language.lower()]
        if same_language:
            return same_language[0]
    return default


def session_cookie_name(request: tornado.httputil.HTTPServerRequest) -> str:
    return SECURE_SESSION_COOKIE if request.protocol == "https" else SESSION_COOKIE


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


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    """The headers every page, API answer and static file carries."""
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "same-origin")
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)


def bearer_token(handler: tornado.web.RequestHandler) -> str | None:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def set_retry_after(handler: tornado.web.RequestHandler, exc: BaseException | None) -> None:
    """A rate-limited answer says when to come back (``Retry-After``, whole seconds)."""
    if isinstance(exc, RateLimitedError):
        handler.set_header("Retry-After", str(max(1, math.ceil(exc.retry_after))))


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


class BaseHandler(Authenticated):
    """Common ground of every handler; reaches the controllers through ``self.settings``."""

    current_user: Account | None
    session_token: str | None = None
    _secure_settings: dict[str, Any] | None = None

    @property
    def controllers(self):
        return self.settings["controllers"]

    @property
    def config(self):
        return self.settings["config"]

    @property
    def settings(self) -> dict[str, Any]:  # type: ignore[override]
        """The application's settings; over HTTPS with the Secure ``__Host-`` XSRF cookie.

        Tornado's XSRF machinery reads its cookie's name and attributes from the
        settings, which are app-wide, while one app serves HTTP and HTTPS (behind
        a proxy) alike; so the HTTPS variant is chosen here, per request.
        """
        settings = self.application.settings
        if self.request.protocol != "https":
            return settings
        if self._secure_settings is None:
            kwargs = {**settings.get("xsrf_cookie_kwargs", {}), "secure": True, "path": "/"}
            self._secure_settings = {
                **settings,
                "xsrf_cookie_name": SECURE_XSRF_COOKIE,
                "xsrf_cookie_kwargs": kwargs,
            }
        return self._secure_settings

    def check_xsrf_cookie(self) -> None:
        # Tornado calls this before prepare(): the credentials come from the headers.
        if self.credentials.kind == "bearer":
            return  # no browser adds a Bearer header on another site's behalf
        super().check_xsrf_cookie()

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def _request_summary(self) -> str:
        # Tornado's log lines (errors, warnings) name the path only: a query string
        # may say who is being looked for (/dm?user=) or where a login leads.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    async def prepare(self) -> None:
        apply_trusted_proxy(
            self.request, self.config.trusted_proxy_networks, self.settings["notices"]
        )
        if len(self.request.body) > self.config.max_body_bytes:
            raise tornado.web.HTTPError(413, "request body over the size limit")
        self.session_token = self.credentials.token
        session = await self.authenticate()
        self.current_user = session.account if session is not None else None

    def start_session(self, token: str) -> None:
        https = self.request.protocol == "https"
        self.set_signed_cookie(
            session_cookie_name(self.request),
            token,
            expires_days=self.config.session_days,
            httponly=True,
            samesite="Lax",
            secure=https,
            path="/",
        )

    def end_session(self) -> None:
        https = self.request.protocol == "https"
        self.clear_cookie(session_cookie_name(self.request), path="/", secure=https)

    def get_user_locale(self) -> tornado.locale.Locale:
        # The user's own choice, then the browser's languages, then --default-locale.
        wanted = [self.get_cookie(LOCALE_COOKIE) or ""]
        wanted += accept_languages(self.request.headers.get("Accept-Language", ""))
        return tornado.locale.get(closest_locale(wanted, self.config.default_locale))

    def get_login_url(self) -> str:
        return "/login"

    def error_details(self, status_code: int, exc: BaseException | None) -> tuple[str, str]:
        """The stable code and a human message for an error response."""
        if isinstance(exc, ChatError):
            return exc.code, exc.message
        code = _HTTP_CODES.get(status_code, "error")
        message = getattr(exc, "log_message", None) or http.HTTPStatus(status_code).phrase
        return code, message

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code, message = self.error_details(status_code, kwargs.get("exc_info", (None,) * 3)[1])
        self.render("error.html", status=status_code, code=code, message=message)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, ChatError):
            return  # an expected user error, answered with its code
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        # Controllers know nothing of HTTP; their errors carry the status to answer with.
        if isinstance(e, ChatError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)


class JsonHandler(BaseHandler):
    """Base of the JSON API: JSON bodies in, JSON out, errors as ``{"error": {...}}``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only the methods a handler implements: Tornado answers any other 405 (as
        # JSON, with Allow) before the XSRF check and before looking up a session.
        if "SUPPORTED_METHODS" not in cls.__dict__:
            base = tornado.web.RequestHandler
            cls.SUPPORTED_METHODS = tuple(
                method
                for method in base.SUPPORTED_METHODS
                if getattr(cls, method.lower()) is not getattr(base, method.lower())
            )

    def check_xsrf_cookie(self) -> None:
        # A call without the session cookie (a script's login or register) carries
        # nothing a forger could borrow; with the cookie it needs X-XSRFToken, under
        # whichever name the cookie has (the Bearer case is BaseHandler's).
        if self.credentials.kind == "none":
            return
        super().check_xsrf_cookie()

    def json_body(self) -> dict[str, Any]:
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.split(";")[0].strip().lower() == "application/json":
            raise BadRequestError("send the body as application/json")
        try:
            body = orjson.loads(self.request.body or b"null")
        except orjson.JSONDecodeError as exc:
            raise BadRequestError("the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise BadRequestError("the body must be a JSON object")
        return body

    def send_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(orjson.dumps(payload))

    def require_user(self) -> Account:
        if self.current_user is None:
            raise tornado.web.HTTPError(401, "sign in first")
        return self.current_user

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None,) * 3)[1]
        code, message = self.error_details(status_code, exc)
        set_retry_after(self, exc)
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.SUPPORTED_METHODS))
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(orjson.dumps({"error": {"code": code, "message": message}}))


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    500: "internal",
    503: "unavailable",
}
