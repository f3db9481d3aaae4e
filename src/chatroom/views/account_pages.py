"""The account pages: login, register, logout, and the language switch; where each
of them leads afterwards (``safe_next``: a local path only)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from chatroom.config import available_locales
from chatroom.controllers import ChatError
from chatroom.views import strings
from chatroom.views.base import PageHandler
from chatroom.views.locale import LOCALE_COOKIE
from chatroom.views.ui_methods import error_text

#: The longest ``next`` a login follows; a longer one leads to ``/``.
MAX_NEXT_CHARS = 2048
#: C0 controls, DEL and C1 controls. Browsers drop tab, CR and LF from a URL, so
#: ``/\t/evil.com`` becomes ``//evil.com``, another site; no path needs any of them.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Kept as they are in a ``Location``: printable ASCII but the space; the rest is %-encoded.
_LOCATION_SAFE = "".join(map(chr, range(0x21, 0x7F)))


def safe_next(value: str | None) -> str:
    """Where to go after login or a language switch: ``value`` if it is a local path, else ``/``.

    A local path starts with one ``/``, has no scheme and no host, no backslash
    (browsers read ``/\\evil.com`` as ``//evil.com``) and no control character.
    What passes is %-encoded to plain ASCII, so it is always a valid header.
    """
    if (
        not value
        or len(value) > MAX_NEXT_CHARS
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or _CONTROL_CHARS_RE.search(value)
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return quote(value, safe=_LOCATION_SAFE)


class AccountFormHandler(PageHandler):
    """Login and register share one form template; only the wording differs."""

    def render_form(self, template: str, error_code: str = "", **kwargs) -> None:
        action = self.request.uri if template == "login.html" else "/register"
        error = self.form_error(error_code) if error_code else None
        # Sign-up control (SPEC §6): what the register form asks and says.
        kwargs.setdefault("registration", self.config.registration)
        kwargs.setdefault("invite", None)
        kwargs.setdefault("notice", None)
        self.render(template, action=action, error=error, error_code=error_code, **kwargs)

    def form_error(self, code: str) -> str:
        return strings.form_errors(self.locale).get(code) or error_text(self, code)


class LoginHandler(AccountFormHandler):
    def get(self) -> None:
        if self.current_user is not None:
            self.redirect(safe_next(self.get_query_argument("next", None, strip=False)))
            return
        self.render_form("login.html", username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        try:
            _, token = await self.controllers.auth.login(
                username, self.get_body_argument("password", ""), self.request.remote_ip
            )
        except ChatError as exc:
            self.set_status(exc.status)
            self.render_form("login.html", error_code=exc.code, username=username)
            return
        self.start_session(token)
        self.redirect(safe_next(self.get_query_argument("next", None, strip=False)))


class RegisterHandler(AccountFormHandler):
    """``/register``: the form, under ``--registration`` (SPEC §6). In ``invite`` mode
    it asks for the invite code, filled in from ``?invite=CODE`` (the invite's link)
    and carried by the form; in ``closed`` mode it says so and has no form."""

    async def get(self) -> None:
        invite = self.get_query_argument("invite", "", strip=True)[:200]
        await self.render_register(invite=invite)

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        invite = self.get_body_argument("invite", "", strip=True)[:200]
        auth = self.controllers.auth
        try:
            await self.controllers.signup.register(
                username, password, invite or None, self.request.remote_ip
            )
            _, token = await auth.login(username, password, self.request.remote_ip)
        except ChatError as exc:
            self.set_status(exc.status)
            await self.render_register(exc.code, username=username, invite=invite)
            return
        self.start_session(token)
        self.redirect("/")

    async def render_register(
        self, error_code: str = "", username: str = "", invite: str = ""
    ) -> None:
        notice = None
        if self.config.registration == "invite" and invite and not error_code:
            found = await self.controllers.signup.check_invite(invite)
            notice = strings.invite_notice(self.locale, found.expires if found else None)
        self.render_form(
            "register.html", error_code, username=username, invite=invite, notice=notice
        )

    def form_error(self, code: str) -> str:
        if code == "forbidden":  # refused by the sign-up mode, not by a stale page
            return strings.signup_refusal(self.locale, self.config.registration)
        return super().form_error(code)


class LogoutHandler(PageHandler):
    async def post(self) -> None:
        if self.session_token and self.current_user is not None:
            await self.controllers.auth.logout(self.session_token)
        self.end_session()
        self.redirect("/login")


class LocaleHandler(PageHandler):
    """``POST /locale``: the language switch; remembers the choice in a cookie."""

    def post(self) -> None:
        lang = self.get_body_argument("lang", "")
        if lang in available_locales():
            self.set_cookie(
                LOCALE_COOKIE,
                lang,
                expires_days=365,
                samesite="Lax",
                secure=self.request.protocol == "https",
            )
        self.redirect(safe_next(self.get_body_argument("next", None, strip=False)), status=303)
