"""HTML pages: the chat UI, login, register, logout, and the not-found page."""

from __future__ import annotations

from urllib.parse import urlencode

import tornado.web

from chatroom.controllers import ChatError
from chatroom.controllers.errors import BadRequestError
from chatroom.views.base import BaseHandler


class ChatPageHandler(BaseHandler):
    """``GET /`` and ``GET /rooms/<name>``: the chat UI opened on a room."""

    async def get(self, name: str = "lobby") -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        rooms = self.controllers.rooms
        try:
            ref = await rooms.open(account, name)
        except BadRequestError:
            raise tornado.web.HTTPError(404, "no such room") from None
        page = await rooms.history(account, ref.name, None)
        summaries = await rooms.list_rooms(account)
        self.render(
            "chat.html",
            room=ref.name,
            room_is_direct=ref.is_direct,
            rooms=summaries,
            messages=page.decoded(),
            missing=page.missing,
            max_chars=self.config.max_message_chars,
        )


def _safe_next(value: str | None) -> str:
    # Only same-site paths: never redirect a login to another site.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


_FORMS = {
    "login.html": {
        "heading": "Log in",
        "button": "Log in",
        "password_autocomplete": "current-password",
        "switch_text": "No account yet?",
        "switch_link": "Register",
        "switch_href": "/register",
    },
    "register.html": {
        "heading": "Register",
        "button": "Register",
        "password_autocomplete": "new-password",
        "switch_text": "Have an account?",
        "switch_link": "Log in",
        "switch_href": "/login",
    },
}


class AccountFormHandler(BaseHandler):
    """Login and register share one form template; only the wording differs."""

    def render_form(self, template: str, **kwargs) -> None:
        action = self.request.uri if template == "login.html" else "/register"
        self.render(template, action=action, **_FORMS[template], **kwargs)


class LoginHandler(AccountFormHandler):
    def get(self) -> None:
        if self.current_user is not None:
            self.redirect(_safe_next(self.get_query_argument("next", None)))
            return
        self.render_form("login.html", error=None, username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        try:
            _, token = await self.controllers.auth.login(
                username, self.get_body_argument("password", "")
            )
        except ChatError as exc:
            self.set_status(exc.status)
            self.render_form("login.html", error=exc.message, username=username)
            return
        self.start_session(token)
        self.redirect(_safe_next(self.get_query_argument("next", None)))


class RegisterHandler(AccountFormHandler):
    def get(self) -> None:
        self.render_form("register.html", error=None, username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        auth = self.controllers.auth
        try:
            await auth.register(username, password)
            _, token = await auth.login(username, password)
        except ChatError as exc:
            self.set_status(exc.status)
            self.render_form("register.html", error=exc.message, username=username)
            return
        self.start_session(token)
        self.redirect("/")


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        if self.session_token and self.current_user is not None:
            await self.controllers.auth.logout(self.session_token)
        self.end_session()
        self.redirect("/login")


class NotFoundHandler(BaseHandler):
    """Every unknown path: a 404 page (or JSON under ``/api/``)."""

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.path.startswith("/api/"):
            self.set_status(404)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(b'{"error":{"code":"not_found","message":"no such API route"}}')
            return
        raise tornado.web.HTTPError(404)
