"""Where a login (or the language switch) may send the browser: local paths only."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from chatroom.views import account_pages as pages
from tests.helpers import PASSWORD, Browser

HOSTILE = [
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "/\\/evil.com",
    "\\\\evil.com",
    "/\t/evil.com",  # /%09/evil.com, decoded: browsers drop the tab
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/x\r\nSet-Cookie: a=b",
    "/\x0b/evil.com",
    "/\x7f/evil.com",
    "/\x85/evil.com",  # C1 (NEL)
    "/\x9b/evil.com",
    "https://evil.com",
    "https:/evil.com",
    "http:evil.com",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,hi",
    "evil.com",
    " /rooms/lobby",
    "\t//evil.com",
    "/" + "a" * 5000,
    "",
    None,
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda value: repr(value)[:24])
def test_hostile_next_falls_back_to_the_root(value):
    assert pages.safe_next(value) == "/"


@pytest.mark.parametrize(
    ("value", "location"),
    [
        ("/", "/"),
        ("/rooms/general", "/rooms/general"),
        ("/rooms/dm:alice:bob", "/rooms/dm:alice:bob"),
        ("/dm?user=bob&x=1#latest", "/dm?user=bob&x=1#latest"),
        ("/rooms/caf%C3%A9", "/rooms/caf%C3%A9"),
        ("/rooms/café", "/rooms/caf%C3%A9"),
        ("/a b", "/a%20b"),
        ("/%2F/evil.com", "/%2F/evil.com"),  # a literal path segment, not a host
    ],
)
def test_local_paths_are_kept_and_made_ascii(value, location):
    assert pages.safe_next(value) == location


async def signed_up(app) -> Browser:
    browser = Browser(app)
    response = await browser.post_form("/register", {"username": "alice", "password": PASSWORD})
    assert response.code == 302
    return browser


@pytest.mark.parametrize(
    "value",
    ["/\t/evil.com", "//evil.com", "/\\evil.com", "https://evil.com", "/\r\n/evil.com"],
    ids=repr,
)
async def test_login_form_never_redirects_off_site(app, value):
    await app.api.register("alice")
    browser = Browser(app)
    response = await browser.post_form(
        "/login?" + urlencode({"next": value}), {"username": "alice", "password": PASSWORD}
    )
    assert response.code == 302, response.body
    assert response.headers["Location"] == "/"


async def test_percent_encoded_tab_in_next_is_not_followed(app):
    # The request of the report, verbatim: a signed-in user opening the link.
    browser = await signed_up(app)
    response = await browser.get("/login?next=/%09/evil.com")
    assert response.code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("raw", ["%0d%0a", "%0a", "%0d", "/%0d%0aSet-Cookie:%20x=1"])
async def test_crlf_in_next_is_a_redirect_home_not_a_500(app, raw):
    browser = await signed_up(app)
    response = await browser.get("/login?next=/x" + raw)
    assert response.code == 302, response.body
    assert response.headers["Location"] == "/"
    assert "x=1" not in response.headers.get_list("Set-Cookie")


async def test_a_local_next_is_followed_after_login(app):
    await app.api.register("alice")
    browser = Browser(app)
    response = await browser.post_form(
        "/login?next=/rooms/lobby%3Fx%3D1", {"username": "alice", "password": PASSWORD}
    )
    assert response.code == 302
    assert response.headers["Location"] == "/rooms/lobby?x=1"


async def test_language_switch_stays_on_site(app):
    browser = await signed_up(app)
    response = await browser.post_form("/locale", {"lang": "zh_CN", "next": "/\t/evil.com"})
    assert response.code == 303
    assert response.headers["Location"] == "/"
    response = await browser.post_form("/locale", {"lang": "zh_CN", "next": "/rooms/lobby"})
    assert response.headers["Location"] == "/rooms/lobby"
