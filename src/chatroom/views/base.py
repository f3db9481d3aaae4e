"""BaseHandler: the signed-in user, JSON in and out, and errors rendered for humans
(``PageHandler``, translated) or scripts (``JsonHandler``); the security headers.

Who the caller is comes from ``Authenticated`` (views/auth.py); the XSRF check
follows from how they authenticated.
"""

from __future__ import annotations

import http
import math
from typing import Any

import orjson
import tornado.locale
import tornado.web

from chatroom.controllers import Account, ChatError
from chatroom.controllers.errors import BadRequestError, RateLimitedError, code_for_status
from chatroom.views.auth import SECURE_XSRF_COOKIE, Authenticated, session_cookie_name
from chatroom.views.locale import LOCALE_COOKIE, accept_languages, closest_locale
from chatroom.views.proxy import apply_trusted_proxy
from chatroom.views.ui_methods import error_text

#: Pages may load scripts and styles from this origin only: no inline script anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    """The headers every page, API answer and static file carries."""
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "same-origin")
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)


def set_retry_after(handler: tornado.web.RequestHandler, exc: BaseException | None) -> None:
    """A rate-limited answer says when to come back (``Retry-After``, whole seconds)."""
    if isinstance(exc, RateLimitedError):
        handler.set_header("Retry-After", str(max(1, math.ceil(exc.retry_after))))


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
        code = code_for_status(status_code)
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


class PageHandler(BaseHandler):
    """Base of the HTML pages: error pages in the reader's language."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None,) * 3)[1]
        code, _ = self.error_details(status_code, exc)
        set_retry_after(self, exc)
        self.render("error.html", status=status_code, code=code, message=error_text(self, code))


class NotFoundHandler(PageHandler):
    """Every unknown path outside ``/api/``: a 404 page."""

    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404)


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
