"""BaseHandler: who is signed in, JSON in and out, and errors rendered for humans or scripts."""

from __future__ import annotations

import http
import ipaddress
import math
from typing import Any

import orjson
import tornado.httputil
import tornado.locale
import tornado.web

from chatroom.controllers import Account, ChatError
from chatroom.controllers.errors import BadRequestError, RateLimitedError

SESSION_COOKIE = "chatroom_session"
#: Over HTTPS the cookie is Secure and carries the __Host- prefix: the browser
#: then refuses it from plain HTTP and from any other (sub)domain.
SECURE_SESSION_COOKIE = "__Host-chatroom_session"
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


def apply_trusted_proxy(request: tornado.httputil.HTTPServerRequest, trusted: tuple) -> None:
    """Believe X-Forwarded-Proto/-For, but only from a peer in ``--trusted-proxies``.

    Anyone else could forge them to look like HTTPS or like another address.
    """
    if not trusted or getattr(request, "_chatroom_proxied", False):
        return
    try:
        peer = ipaddress.ip_address(request.remote_ip)
    except ValueError:
        return
    if not any(peer in network for network in trusted):
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


class BaseHandler(tornado.web.RequestHandler):
    """Common ground of every handler; reaches the controllers through ``self.settings``."""

    current_user: Account | None
    session_token: str | None = None

    @property
    def controllers(self):
        return self.settings["controllers"]

    @property
    def config(self):
        return self.settings["config"]

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def _request_summary(self) -> str:
        # Tornado's log lines (errors, warnings) name the path only: a query string
        # may say who is being looked for (/dm?user=) or where a login leads.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    async def prepare(self) -> None:
        apply_trusted_proxy(self.request, self.config.trusted_proxy_networks)
        if len(self.request.body) > self.config.max_body_bytes:
            raise tornado.web.HTTPError(413, "request body over the size limit")
        token = bearer_token(self) or self._cookie_token()
        self.session_token = token
        self.current_user = await self.controllers.auth.authenticate(token)

    def _cookie_token(self) -> str | None:
        value = self.get_signed_cookie(session_cookie_name(self.request), max_age_days=31)
        return value.decode() if value else None

    def start_session(self, token: str) -> None:
        https = self.request.protocol == "https"
        self.set_signed_cookie(
            session_cookie_name(self.request),
            token,
            expires_days=30,
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
        # Scripts authenticate with a Bearer token and carry no cookie, so there is
        # nothing to forge; only cookie-authenticated calls need the XSRF header.
        if bearer_token(self) or not self.get_cookie(SESSION_COOKIE):
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
        if isinstance(exc, RateLimitedError):
            self.set_header("Retry-After", str(math.ceil(exc.retry_after)))
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
