"""The HTML pages without a browser: languages, the language switch, and the forms
that make the chat usable without JavaScript (send, new room, direct message)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from chatroom.config import LOCALE_DIR, Config, ConfigError, available_locales
from tests.helpers import PASSWORD, Browser, body

SRC = Path(__file__).resolve().parents[2] / "src" / "chatroom"
_LITERAL = r"""(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
_CALL = re.compile(r"(?<![\w.])_\(\s*" + _LITERAL + r"(?:\s*,\s*" + _LITERAL + r")?", re.S)


def translatable_strings() -> set[tuple[str, str]]:
    """Every ``_("...")`` in the templates and views/*.py, as (plural kind, text)."""
    found = set()
    for path in [*sorted((SRC / "templates").glob("*.html")), *sorted(SRC.glob("views/*.py"))]:
        # Python's implicit concatenation of string literals across lines.
        text = re.sub(r'"\s*\n\s*"', "", path.read_text(encoding="utf-8"))
        for m in _CALL.finditer(text):
            one = m.group(1) if m.group(1) is not None else m.group(2)
            two = m.group(3) if m.group(3) is not None else m.group(4)
            if two is None:
                found.add(("unknown", one))
            else:
                found |= {("singular", one), ("plural", two)}
    return found


def translations(code: str) -> dict[tuple[str, str], str]:
    with open(LOCALE_DIR / f"{code}.csv", encoding="utf-8") as f:
        return {(row[2] if len(row) > 2 else "unknown", row[0]): row[1] for row in csv.reader(f)}


@pytest.mark.parametrize("code", [c for c in available_locales() if c != "en_US"])
def test_every_ui_string_is_translated(code):
    wanted, have = translatable_strings(), translations(code)
    assert len(wanted) > 50
    assert sorted(wanted - set(have)) == [], "missing translations"
    assert sorted(set(have) - wanted) == [], "translations of strings no longer used"
    for (_, english), translated in have.items():
        placeholders = sorted(re.findall(r"%\(\w+\)s", english))
        assert sorted(re.findall(r"%\(\w+\)s", translated)) == placeholders, english


def test_default_locale_must_be_one_chatroom_has(tmp_path):
    assert Config(data_dir=tmp_path, default_locale="zh_CN").default_locale == "zh_CN"
    with pytest.raises(ConfigError, match="default_locale"):
        Config(data_dir=tmp_path, default_locale="fr_FR")


def lang_of(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.body.decode()).group(1)


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        (None, "en-US"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("fr-FR, en;q=0.5", "en-US"),
        ("en-GB", "en-US"),
        ("fr, zh;q=0.1", "zh-CN"),
        ("de", "en-US"),
        ("zh;q=0, en", "en-US"),
    ],
)
async def test_language_follows_accept_language(app, accept_language, lang):
    browser = Browser(app)
    headers = {"Accept-Language": accept_language} if accept_language else {}
    page = await browser.get("/login", headers=headers)
    assert lang_of(page) == lang
    if lang == "zh-CN":
        html = page.body.decode()
        assert '<label for="username">用户名</label>' in html
        assert '<label for="password">密码</label>' in html
        assert ">登录</button>" in html


async def test_default_locale_is_the_fallback(app_factory):
    app = await app_factory(default_locale="zh_CN")
    browser = Browser(app)
    assert lang_of(await browser.get("/login", headers={"Accept-Language": "de"})) == "zh-CN"
    assert lang_of(await browser.get("/login")) == "zh-CN"
    assert lang_of(await browser.get("/login", headers={"Accept-Language": "en"})) == "en-US"


async def test_language_switch_sets_a_cookie_and_goes_back(app):
    browser = Browser(app)
    refused = await browser.post_form("/locale", {"lang": "zh_CN"}, xsrf=False)
    assert refused.code == 403
    switched = await browser.post_form("/locale", {"lang": "zh_CN", "next": "/register"})
    assert switched.code == 303 and switched.headers["Location"] == "/register"
    assert browser.cookies["locale"] == "zh_CN"
    english_browser = {"Accept-Language": "en-US"}
    assert lang_of(await browser.get("/register", headers=english_browser)) == "zh-CN"
    # Unknown languages are ignored; "next" never leaves the site.
    odd = await browser.post_form("/locale", {"lang": "xx_YY", "next": "//evil.example/"})
    assert odd.headers["Location"] == "/" and browser.cookies["locale"] == "zh_CN"
    await browser.post_form("/locale", {"lang": "en_US"})
    assert lang_of(await browser.get("/register", headers={"Accept-Language": "zh"})) == "en-US"


async def signed_in(app, name: str, headers: dict | None = None) -> Browser:
    await app.api.register(name)
    browser = Browser(app)
    response = await browser.post_form("/login", {"username": name, "password": PASSWORD})
    assert response.code == 302
    return browser


def client_id_of(html: str) -> str:
    return re.search(r'name="client_id" value="([0-9a-f]{32})"', html).group(1)


async def history(app, name: str, room: str = "lobby") -> list[str]:
    token = await app.api.login(name)
    response = await app.api.request("GET", f"/api/rooms/{room}/messages", token=token)
    return [m["text"] for m in body(response)["messages"]]


async def test_the_message_form_posts_without_javascript(app):
    browser = await signed_in(app, "alice")
    page = (await browser.get("/")).body.decode()
    assert '<form id="composer" class="composer" method="post" action="/rooms/lobby">' in page
    fields = {"text": "line one\r\nline two", "client_id": client_id_of(page)}
    sent = await browser.post_form("/rooms/lobby", fields)
    assert sent.code == 303 and sent.headers["Location"] == "/rooms/lobby#latest"
    # The same form submitted twice (a double click, a reload) is stored once.
    again = await browser.post_form("/rooms/lobby", fields)
    assert again.code == 303
    assert await history(app, "alice") == ["line one\nline two"]
    shown = (await browser.get("/rooms/lobby")).body.decode()
    assert "line one\nline two</span>" in shown and 'id="latest"' in shown
    # One's own messages are never below a "new messages" divider.
    assert 'id="new-messages"' not in shown


async def test_the_message_form_needs_xsrf_and_a_session(app):
    browser = await signed_in(app, "alice")
    refused = await browser.post_form("/rooms/lobby", {"text": "hi"}, xsrf=False)
    assert refused.code == 403
    anonymous = Browser(app)
    response = await anonymous.post_form("/rooms/lobby", {"text": "hi"})
    assert response.code == 303 and response.headers["Location"].startswith("/login?next=")
    assert await history(app, "alice") == []


async def test_message_form_errors_are_shown_on_the_page(app_factory):
    app = await app_factory(max_message_chars=10, send_burst=1, send_per_second=0.01)
    browser = await signed_in(app, "alice")
    too_long = await browser.post_form("/rooms/lobby", {"text": "x" * 11})
    html = too_long.body.decode()
    assert too_long.code == 400
    assert 'data-code="too_long"' in html and "at most 10 characters" in html
    assert ">xxxxxxxxxxx</textarea>" in html  # the text is kept for another try
    empty = await browser.post_form("/rooms/lobby", {"text": ""})
    assert empty.code == 400 and 'data-code="bad_request"' in empty.body.decode()
    assert (await browser.post_form("/rooms/lobby", {"text": "one"})).code == 303
    limited = await browser.post_form("/rooms/lobby", {"text": "two"})
    assert limited.code == 429 and 'data-code="rate_limited"' in limited.body.decode()
    zh = await browser.post_form(
        "/rooms/lobby", {"text": "x" * 11}, headers={"Accept-Language": "zh"}
    )
    assert "内容太长：最多 10 个字符。" in zh.body.decode()
    assert await history(app, "alice") == ["one"]


async def test_message_form_to_rooms_one_may_not_use(app):
    await app.api.register("bob")
    await app.api.register("carol")
    browser = await signed_in(app, "alice")
    assert (await browser.post_form("/rooms/nowhere", {"text": "hi"})).code == 404
    forbidden = await browser.post_form("/rooms/dm:bob:carol", {"text": "hi"})
    assert forbidden.code == 403 and 'data-code="forbidden"' in forbidden.body.decode()


async def test_new_room_and_direct_message_forms(app):
    await app.api.register("Bob")
    browser = await signed_in(app, "alice")
    created = await browser.post_form("/rooms", {"name": "garden"})
    assert created.code == 303 and created.headers["Location"] == "/rooms/garden"
    exists = await browser.post_form("/rooms", {"name": "lobby"})
    assert exists.code == 303 and exists.headers["Location"] == "/rooms/lobby"
    assert (await browser.post_form("/rooms", {"name": "Not OK"})).code == 400
    dm = await browser.get("/dm?user=BOB")
    assert dm.code == 303 and dm.headers["Location"] == "/rooms/dm:alice:bob"
    unknown = await browser.get("/dm?user=nobody")
    assert unknown.code == 404 and "There is no user named nobody." in unknown.body.decode()
    page = (await browser.get("/rooms/dm:alice:bob")).body.decode()
    assert "<title>bob · chatroom</title>" in page
    assert 'href="/rooms/dm:alice:bob" aria-current="page"' in page


async def test_new_messages_divider_and_history_rendered_by_the_server(app):
    bob = await app.client("bob")
    browser = await signed_in(app, "alice")
    for text in ("first", "second"):
        await bob.send(text)
        await bob.next("ack")
    html = (await browser.get("/rooms/lobby")).body.decode()
    divider = html.index('id="new-messages"')
    assert html.index('class="day"') < divider < html.index(">first</span>")
    assert html.index(">first</span>") < html.index(">second</span>")
    # Consecutive messages of one author share one header.
    assert re.search(r'<li class="message cont" data-id="2"', html)


async def test_translated_strings_for_the_script_are_safe_json(app):
    browser = await signed_in(app, "alice")
    html = (await browser.get("/", headers={"Accept-Language": "zh-CN"})).body.decode()
    block = re.search(r'<script type="application/json" id="i18n">(.*?)</script>', html, re.S)
    strings = json.loads(block.group(1))
    assert "<" not in block.group(1)
    assert strings["state_connected"] == "已连接"
    codes = {"bad_request", "too_long", "rate_limited", "not_found", "forbidden"}
    codes |= {"unavailable", "conflict", "unauthorized"}
    assert codes <= set(strings["errors"])
    assert all(strings["errors"][code] for code in codes)


async def test_error_pages_are_translated(app):
    browser = Browser(app)
    page = await browser.get("/no/such/page", headers={"Accept-Language": "zh-CN"})
    html = page.body.decode()
    assert page.code == 404 and "没有这个聊天室、用户或页面。" in html and 'lang="zh-CN"' in html
