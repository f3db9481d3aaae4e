"""Which UI language a request gets: the language-switch cookie, then the browser's
``Accept-Language``, then ``--default-locale``."""

from __future__ import annotations

import tornado.locale

#: The UI language the user picked with the language switch (a locale code such as zh_CN).
LOCALE_COOKIE = "locale"


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
