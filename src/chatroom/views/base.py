"""BaseHandler: who is signed in, JSON in and out, and errors rendered for humans or scripts."""

from __future__ import annotations

import http
from typing import Any

import orjson
import tornado.web

from chatroom.controllers import Account, ChatError
from chatroom.controllers.errors import BadRequestError

SESSION_COOKIE = "chatroom_session"
#: Pages may load scripts and styles from this origin only: no inline script anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


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
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)

    async def prepare(self) -> None:
        if len(self.request.body) > self.config.max_body_bytes:
            raise tornado.web.HTTPError(413, "request body over the size limit")
        token = bearer_token(self) or self._cookie_token()
        self.session_token = token
        self.current_user = await self.controllers.auth.authenticate(token)

    def _cookie_token(self) -> str | None:
        value = self.get_signed_cookie(SESSION_COOKIE, max_age_days=31)
        return value.decode() if value else None

    def start_session(self, token: str) -> None:
        self.set_signed_cookie(
            SESSION_COOKIE,
            token,
            expires_days=30,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )

    def end_session(self) -> None:
        self.clear_cookie(SESSION_COOKIE)

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
        code, message = self.error_details(status_code, kwargs.get("exc_info", (None,) * 3)[1])
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
