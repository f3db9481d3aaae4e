"""HTML pages: the chat UI (also usable without JavaScript), login, register, logout,
the language switch, and the not-found page. Every visible string goes through ``_``."""

from __future__ import annotations

import http
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import tornado.escape
import tornado.locale
import tornado.web

from chatroom.config import Config, available_locales
from chatroom.controllers import Account, ChatError
from chatroom.controllers.errors import BadRequestError, UnavailableError
from chatroom.controllers.limits import TYPING_INTERVAL_SECONDS
from chatroom.controllers.validation import dm_room_name
from chatroom.views.base import LOCALE_COOKIE, BaseHandler, set_retry_after

#: Consecutive messages of one author closer than this share one header.
GROUP_SECONDS = 5 * 60
#: How many avatar colours chat.css defines (``hue-0`` .. ``hue-11``).
AVATAR_HUES = 12


# -- helpers the templates call (Tornado ui_methods: the handler comes first) ---------


def avatar_class(handler: tornado.web.RequestHandler, name: str) -> str:
    """A stable colour class per user; static/js/names.js computes the same hash."""
    value = 0
    for char in name.lower():
        value = (value * 31 + ord(char)) & 0xFFFFFFFF
    return f"hue-{value % AVATAR_HUES}"


def room_url(handler: tornado.web.RequestHandler | None, name: str) -> str:
    """``/rooms/<name>``, with the colons of ``dm:a:b`` left as they are (readable URLs)."""
    return "/rooms/" + tornado.escape.url_escape(name, plus=False).replace("%3A", ":")


def languages(handler: tornado.web.RequestHandler) -> list[tuple[str, str, str]]:
    """(code, short name, full name) of each UI language, in that language, for the switch."""
    result = []
    for code in available_locales():
        name = tornado.locale.LOCALE_NAMES.get(code, {}).get("name", code)
        # "English (US)" -> "English", "中文(简体)" -> "中文": short enough for a phone.
        result.append((code, name.split("(")[0].strip() or name, name))
    return result


def error_text(handler: tornado.web.RequestHandler, code: str, **params: Any) -> str:
    """The translated sentence for an error ``code`` (the same ones the protocol uses)."""
    _ = handler.locale.translate
    known = error_messages(handler.locale, **params)
    return known.get(code) or _("Something went wrong (%(code)s).") % {"code": code}


def status_text(handler: tornado.web.RequestHandler, status: int) -> str:
    _ = handler.locale.translate
    texts = {
        400: _("Bad request"),
        401: _("Not signed in"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Not allowed"),
        409: _("Conflict"),
        413: _("Too large"),
        429: _("Too many requests"),
        500: _("Server error"),
        503: _("Unavailable"),
    }
    try:
        fallback = http.HTTPStatus(status).phrase
    except ValueError:
        fallback = str(status)
    return texts.get(status, fallback)


def client_strings_json(handler: tornado.web.RequestHandler) -> str:
    """The strings chat.js shows, translated, as JSON safe inside ``<script>``."""
    # json_encode already writes "</" as "<\/"; escaping every "<" also rules out "<!--".
    return tornado.escape.json_encode(client_strings(handler)).replace("<", "\\u003c")


def client_settings(handler: tornado.web.RequestHandler) -> dict[str, object]:
    """The server's rules the browser client follows, written by chat.html as ``data-``
    attributes of ``<body>`` (``data-ping-interval="25"``, ...): the one list of them."""
    settings = handler.settings
    return {
        "group-seconds": GROUP_SECONDS,
        "avatar-hues": AVATAR_HUES,
        "ping-interval": settings["websocket_ping_interval"],
        "ping-timeout": settings["websocket_ping_timeout"],
        "typing-interval": TYPING_INTERVAL_SECONDS,
    }


def blank_message(handler: tornado.web.RequestHandler) -> Row:
    """The row that renders ``_message.html`` with empty fields, for the ``<template>``
    that static/js/messages.js clones."""
    return BLANK_MESSAGE


UI_METHODS = {
    "avatar_class": avatar_class,
    "room_url": room_url,
    "languages": languages,
    "error_text": error_text,
    "status_text": status_text,
    "client_strings_json": client_strings_json,
    "client_settings": client_settings,
    "blank_message": blank_message,
}


def error_messages(locale: tornado.locale.Locale, **params: Any) -> dict[str, str]:
    _ = locale.translate
    max_chars = params.get("max_chars", Config.max_message_chars)
    return {
        "bad_request": _("That was not a valid request."),
        "too_long": _("The message is too long: at most %(max)s characters.") % {"max": max_chars},
        "rate_limited": _("You are sending messages too fast; wait a moment."),
        "not_found": _("There is no such room, user or page."),
        "forbidden": _("This is not open to you, or the page expired: reload and try again."),
        "unavailable": _("The server cannot store messages right now; try again shortly."),
        "conflict": _("That name is taken."),
        "unauthorized": _("You are signed out; log in again."),
        "too_large": _("That is too large to send."),
        "method_not_allowed": _("That is not possible here."),
        "internal": _("Something went wrong on the server."),
    }


def client_strings(handler: tornado.web.RequestHandler) -> dict[str, Any]:
    _ = handler.locale.translate
    return {
        "state_connecting": _("connecting…"),
        "state_connected": _("connected"),
        "state_reconnecting": _("reconnecting in %(seconds)ss"),
        "state_offline": _("offline"),
        "typing_one": _("%(user)s is typing…"),
        "typing_two": _("%(user)s and %(other)s are typing…"),
        "typing_many": _("Several people are typing…"),
        "sending": _("sending…"),
        "not_sent": _("not sent"),
        "retry": _("Retry"),
        "discard": _("Discard"),
        "gap_one": _(
            "%(count)s older message is no longer kept.",
            "%(count)s older messages are no longer kept.",
            1,
        ),
        "gap_other": _(
            "%(count)s older message is no longer kept.",
            "%(count)s older messages are no longer kept.",
            2,
        ),
        "new_messages": _("New messages"),
        "you": _("(you)"),
        "chat_with": _("Chat with %(user)s"),
        "unread": _("%(count)s unread"),
        "room_exists": _('A room named "%(name)s" already exists.'),
        "create_failed": _("Could not create the room."),
        "unreachable": _("Could not reach the server; try again."),
        "dismiss": _("Dismiss"),
        "retrying": _("Retrying in %(seconds)ss."),
        "notify_enable": _("Enable notifications"),
        "notify_on": _("Notifications: on"),
        "notify_off": _("Notifications: off"),
        "notify_blocked": _("Notifications are blocked by the browser"),
        "notify_room": _("%(user)s in #%(room)s"),
        "notify_dm": _("%(user)s (direct message)"),
        "announce": _("%(user)s: %(text)s"),
        "announce_room": _("%(user)s in %(room)s: %(text)s"),
        "error": _("Something went wrong (%(code)s)."),
        "errors": error_messages(handler.locale, max_chars=handler.config.max_message_chars),
    }


# -- the chat page --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the server-rendered message list (times in UTC; chat.js localises)."""

    kind: str  # "day", "new" or "message"
    day: str = ""
    message: dict | None = None
    time: str = ""
    iso: str = ""
    cont: bool = False
    last: bool = False


BLANK_MESSAGE = Row("message", message={"id": "", "user": "", "ts": "", "text": ""})


def timeline(messages: list[dict], first_unread: int | None, me: str) -> list[Row]:
    """Messages with day separators, the "new messages" divider and author grouping.

    The divider goes above the first unread message someone else wrote."""
    rows: list[Row] = []
    previous: dict | None = None
    previous_day = ""
    divider_shown = False
    for m in messages:
        when = datetime.fromtimestamp(float(m["ts"]), timezone.utc)
        day = when.strftime("%Y-%m-%d")
        if day != previous_day:
            rows.append(Row("day", day=day))
        divider = (
            not divider_shown
            and first_unread is not None
            and m["id"] >= first_unread
            and m["user"] != me
        )
        if divider:
            rows.append(Row("new"))
            divider_shown = True
        cont = (
            previous is not None
            and not divider
            and day == previous_day
            and previous["user"] == m["user"]
            and float(m["ts"]) - float(previous["ts"]) < GROUP_SECONDS
        )
        rows.append(
            Row(
                "message",
                message=m,
                time=when.strftime("%H:%M"),
                iso=when.isoformat().replace("+00:00", "Z"),
                cont=cont,
                last=m is messages[-1],
            )
        )
        previous, previous_day = m, day
    return rows


def dm_peer(account: Account, room: str) -> str:
    """The other person of a ``dm:a:b`` room (or the user, in a note-to-self)."""
    _, first, second = room.split(":", 2)
    return second if first == account.key else first


class PageHandler(BaseHandler):
    """Base of the HTML pages: error pages in the reader's language."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None,) * 3)[1]
        code, _ = self.error_details(status_code, exc)
        set_retry_after(self, exc)
        self.render("error.html", status=status_code, code=code, message=error_text(self, code))


class ChatPageHandler(PageHandler):
    """``GET /``, ``GET /rooms/<name>``: the chat UI on a room. ``POST /rooms/<name>``:
    send a message from the plain form (the page without JavaScript)."""

    async def get(self, name: str = "lobby") -> None:
        if self.current_user is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        await self.render_room(name)

    async def post(self, name: str = "lobby") -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}), status=303)
            return
        # Forms send line breaks as CRLF; the JavaScript client sends what was typed.
        text = self.get_body_argument("text", "").replace("\r\n", "\n")
        client_id = self.get_body_argument("client_id", "") or None
        try:
            await self.controllers.chat.post(account, name, text, client_id)
        except ChatError as exc:
            if exc.code in ("not_found", "forbidden", "unauthorized"):
                raise  # about the room, not the message: the error page
            self.set_status(exc.status)
            message = error_text(self, exc.code, max_chars=self.config.max_message_chars)
            await self.render_room(name, error=message, error_code=exc.code, draft=text)
            return
        # "#latest": without JavaScript, the browser scrolls the list to the newest message.
        self.redirect(room_url(self, name) + "#latest", status=303)

    async def render_room(
        self, name: str, error: str | None = None, error_code: str = "", draft: str = ""
    ) -> None:
        account = self.current_user
        assert account is not None
        rooms = self.controllers.rooms
        try:
            ref = await rooms.open(account, name)
        except BadRequestError:
            raise tornado.web.HTTPError(404, "no such room") from None
        try:
            page = await rooms.history(account, ref.name, None)
            messages, missing = page.decoded(), page.missing
            summaries = await rooms.list_rooms(account)
        except UnavailableError:
            # Redis is down: still a page, saying so; the client reconnects by itself.
            messages, missing, summaries = [], 0, []
            error_code = error_code or "unavailable"
            error = error or error_text(self, "unavailable")
        here = next((r for r in summaries if r.name == ref.name), None)
        first_unread = None
        if here is not None and here.member and here.unread > 0:
            first_unread = here.last_id - here.unread + 1
        self.render(
            "chat.html",
            room=ref.name,
            room_label=dm_peer(account, ref.name) if ref.is_direct else ref.name,
            is_direct=ref.is_direct,
            topic=here.topic if here is not None else "",
            public_rooms=[r for r in summaries if not r.is_direct],
            direct_rooms=[(r, dm_peer(account, r.name)) for r in summaries if r.is_direct],
            timeline=timeline(messages, first_unread, account.name),
            missing=missing,
            max_chars=self.config.max_message_chars,
            error=error,
            error_code=error_code,
            draft=draft,
            # A fresh id per rendered form: submitting the same form twice stores it once.
            client_id=uuid.uuid4().hex,
        )


class CreateRoomHandler(PageHandler):
    """``POST /rooms``: the "New room" form without JavaScript; opens the room."""

    async def post(self) -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login", status=303)
            return
        name = self.get_body_argument("name", "").strip()
        try:
            await self.controllers.rooms.create(account, name)
        except ChatError as exc:
            if exc.code != "conflict":
                raise
            # It exists already: take the user there, which is what they wanted.
        self.redirect(room_url(self, name), status=303)


class DirectMessageHandler(PageHandler):
    """``GET /dm?user=<name>``: the "Chat with" form; redirects to ``/rooms/dm:a:b``."""

    async def get(self) -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        wanted = self.get_query_argument("user", "").strip()
        peer = await self.controllers.auth.lookup_user(wanted, self.request.remote_ip)
        if peer is None:
            self.set_status(404)
            _ = self.locale.translate
            message = _("There is no user named %(name)s.") % {"name": wanted}
            self.render("error.html", status=404, code="not_found", message=message)
            return
        self.redirect(room_url(self, dm_room_name(account.key, peer.key)), status=303)


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


# -- accounts -------------------------------------------------------------------------


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
        self.render(template, action=action, error=error, error_code=error_code, **kwargs)

    def form_error(self, code: str) -> str:
        _ = self.locale.translate
        if code == "unauthorized":
            return _("Log in failed: wrong username or password.")
        if code == "bad_request":
            return _(
                "Choose a username of 1 to 32 letters, digits, _ . or -"
                " and a password of 8 to 256 characters."
            )
        if code == "conflict":
            return _("That username is taken; choose another one.")
        return error_text(self, code)


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
    def get(self) -> None:
        self.render_form("register.html", username="")

    async def post(self) -> None:
        username = self.get_body_argument("username", "")
        password = self.get_body_argument("password", "")
        auth = self.controllers.auth
        try:
            await auth.register(username, password, self.request.remote_ip)
            _, token = await auth.login(username, password, self.request.remote_ip)
        except ChatError as exc:
            self.set_status(exc.status)
            self.render_form("register.html", error_code=exc.code, username=username)
            return
        self.start_session(token)
        self.redirect("/")


class LogoutHandler(PageHandler):
    async def post(self) -> None:
        if self.session_token and self.current_user is not None:
            await self.controllers.auth.logout(self.session_token)
        self.end_session()
        self.redirect("/login")


class NotFoundHandler(PageHandler):
    """Every unknown path outside ``/api/``: a 404 page."""

    async def prepare(self) -> None:
        await super().prepare()
        raise tornado.web.HTTPError(404)
