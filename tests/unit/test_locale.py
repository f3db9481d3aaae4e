"""Unit tests of the UI language choice: ``accept_languages`` reads the ``Accept-Language``
header, ``closest_locale`` maps the wanted tags to a supported locale."""

from __future__ import annotations

import time

import pytest
import tornado.locale

from chatroom.config import LOCALE_DIR
from chatroom.views.locale import accept_languages, closest_locale

DEFAULT = "en_US"


@pytest.fixture(scope="module", autouse=True)
def translations() -> None:
    """The translations the app loads at startup: en_US (built in) and zh_CN."""
    tornado.locale.load_translations(str(LOCALE_DIR))
    assert set(tornado.locale.get_supported_locales()) == {"en_US", "zh_CN"}


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("", []),
        ("   ", []),
        (",,, ,", []),
        ("en", ["en"]),
        ("zh-CN", ["zh-CN"]),
        # The example of RFC 9110 §12.5.4: ordered by weight.
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ["fr-CH", "fr", "en", "de", "*"]),
        ("en;q=0.5, zh-CN", ["zh-CN", "en"]),
        ("de;q=0.3, fr;q=0.7, en", ["en", "fr", "de"]),
        # Equal weights keep the header's order (a stable sort).
        ("de, fr, en", ["de", "fr", "en"]),
        ("de;q=0.5, fr;q=0.5, en;q=0.5", ["de", "fr", "en"]),
        # q=0 means "not acceptable": left out.
        ("en;q=0, fr", ["fr"]),
        ("en;q=0.0, fr;q=0.000", []),
        # A malformed, negative or NaN weight counts as q=0, never as the default 1.
        ("en;q=abc, fr;q=0.1", ["fr"]),
        ("en;q=, fr;q=0.1", ["fr"]),
        ("en;q=-1, fr;q=0.1", ["fr"]),
        ("en;q=nan, fr;q=0.1", ["fr"]),
        ("en;q=0.5;q=0.9, fr;q=0.1", ["fr"]),
        # Whitespace around items and parameters is tolerated; empty items are skipped.
        ("  en  ;  q=0.5 ,fr, ,", ["fr", "en"]),
        ("\ten;q=0.2,\tzh;q=0.4", ["zh", "en"]),
        # A parameter that is not a weight leaves the default weight of 1.
        ("en;level=1, fr;q=0.5", ["en", "fr"]),
        # An item with only a weight names no language.
        (";q=0.9, en;q=0.1", ["en"]),
    ],
)
def test_accept_languages(header: str, tags: list[str]) -> None:
    assert accept_languages(header) == tags


def test_a_huge_header_is_read_quickly_and_ordered() -> None:
    # Tornado refuses request headers past 64 KiB: this is past that, and still quick.
    items = [f"x{i};q=0.{i % 9 + 1}" for i in range(20_000)] + ["zh;q=1"]
    header = ", ".join(items)
    assert len(header) > 64 * 1024
    started = time.perf_counter()
    tags = accept_languages(header)
    assert time.perf_counter() - started < 1.0
    assert len(tags) == 20_001
    assert tags[0] == "zh"
    assert tags[1:3] == ["x8", "x17"]  # q=0.9, in header order
    assert tags[-1] == "x19998"  # the last of the q=0.1 ones (i % 9 == 0)
    assert closest_locale(tags, DEFAULT) == "zh_CN"


@pytest.mark.parametrize(
    ("wanted", "default", "chosen"),
    [
        ([], DEFAULT, DEFAULT),
        ([""], DEFAULT, DEFAULT),  # no locale cookie
        (["", "zh-CN"], DEFAULT, "zh_CN"),
        (["zh-CN"], DEFAULT, "zh_CN"),
        (["zh_CN"], DEFAULT, "zh_CN"),
        (["ZH-cn"], DEFAULT, "zh_CN"),
        (["zh"], DEFAULT, "zh_CN"),
        (["zh-Hans"], DEFAULT, "zh_CN"),
        (["zh-Hans-CN"], DEFAULT, "zh_CN"),
        (["zh-TW"], DEFAULT, "zh_CN"),  # the same language, another region
        (["en"], "zh_CN", "en_US"),
        (["en-GB", "zh"], DEFAULT, "en_US"),  # the first supported language wins
        (["fr", "de", "zh"], DEFAULT, "zh_CN"),
        (["fr", "de"], DEFAULT, DEFAULT),
        (["fr"], "zh_CN", "zh_CN"),  # the default is the operator's --default-locale
        (["*"], DEFAULT, DEFAULT),
    ],
)
def test_closest_locale(wanted: list[str], default: str, chosen: str) -> None:
    assert closest_locale(wanted, default) == chosen


@pytest.mark.parametrize(
    ("hostile", "chosen"),
    [
        ("-", DEFAULT),
        ("_", DEFAULT),
        ("_zh", DEFAULT),
        ("-CN", DEFAULT),
        ("zh_", "zh_CN"),  # an empty region: the language alone
        ("zh_" + "X" * 10_000, "zh_CN"),
        ("zh\x00CN", DEFAULT),
        ("../../etc/passwd", DEFAULT),
        ("en_US\r\nSet-Cookie: x=1", DEFAULT),
        ("<script>alert(1)</script>", DEFAULT),
        ("\x00", DEFAULT),
        ("\ufb00", DEFAULT),  # a ligature whose case mapping grows
        ("\u0130", DEFAULT),  # dotted capital I: lowercases to two characters
        ("a" * 10_000, DEFAULT),
    ],
)
def test_closest_locale_of_a_hostile_cookie(hostile: str, chosen: str) -> None:
    """The locale cookie is the user's to set: whatever it holds, a known locale comes back."""
    assert closest_locale([hostile], DEFAULT) == chosen
    assert closest_locale([hostile], DEFAULT) in tornado.locale.get_supported_locales()
