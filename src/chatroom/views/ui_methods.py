"""The helpers the templates call (Tornado ``ui_methods``: the handler comes first),
collected in ``UI_METHODS`` for make_app; the pages call some of them too."""

from __future__ import annotations

import http
from typing import Any

import tornado.escape
import tornado.locale
import tornado.web

from chatroom.config import available_locales
from chatroom.controllers.errors import code_for_status
from chatroom.controllers.limits import TYPING_INTERVAL_SECONDS
from chatroom.views import strings
from chatroom.views.timeline import BLANK_MESSAGE, GROUP_SECONDS, Row

#: How many avatar colours chat.css defines (``hue-0`` .. ``hue-11``).
AVATAR_HUES = 12


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
    known = strings.error_messages(handler.locale, **params)
    return known.get(code) or strings.unknown_error(handler.locale, code)


def status_text(handler: tornado.web.RequestHandler, status: int) -> str:
    """The error page's translated heading for an HTTP ``status``, through its error code."""
    title = strings.error_titles(handler.locale).get(code_for_status(status))
    if title is not None:
        return title
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def client_strings_json(handler: tornado.web.RequestHandler) -> str:
    """The strings chat.js shows, translated, as JSON safe inside ``<script>``."""
    texts = strings.client_strings(handler.locale, handler.settings["config"].max_message_chars)
    # json_encode already writes "</" as "<\/"; escaping every "<" also rules out "<!--".
    return tornado.escape.json_encode(texts).replace("<", "\\u003c")


def client_settings(handler: tornado.web.RequestHandler) -> dict[str, object]:
    """The server's rules the browser client follows, written by chat.html as ``data-``
    attributes of ``<body>`` (``data-ping-interval="25"``, ...): the one list of them."""
    settings = handler.settings
    return {
        "group-seconds": GROUP_SECONDS,
        "avatar-hues": AVATAR_HUES,
        "ping-interval": settings["config"].ping_interval,
        "ping-timeout": settings["config"].ping_timeout,
        "typing-interval": TYPING_INTERVAL_SECONDS,
        "max-upload-bytes": handler.settings["config"].max_upload_bytes,
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
