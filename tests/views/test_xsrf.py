"""XSRF is decided by how the caller authenticated, whatever the session cookie is named,
and over HTTPS Tornado's XSRF cookie is Secure and ``__Host-`` prefixed."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.helpers import PASSWORD, body

#: What a TLS-terminating proxy in --trusted-proxies adds.
HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
SECURE_XSRF = "__Host-xsrf"


def cookie_pairs(response) -> dict[str, str]:
    pairs = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        pairs[name] = rest.split(";")[0]
    return pairs


def set_cookie(response, name: str) -> str:
    found = [h for h in response.headers.get_list("Set-Cookie") if h.startswith(name + "=")]
    assert found, response.headers.get_list("Set-Cookie")
    return found[0]


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


@pytest.fixture
async def https_app(app_factory):
    """The app behind a trusted TLS proxy on 127.0.0.1."""
    return await app_factory(trusted_proxies=("127.0.0.1",))


async def https_session(app) -> dict[str, str]:
    """alice signed in over HTTPS: her __Host- session cookie and the __Host- XSRF cookie."""
    await app.api.register("alice")
    login = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}, headers=HTTPS
    )
    assert login.code == 200, login.body  # no cookie yet: no XSRF token needed
    cookies = cookie_pairs(login)
    assert "__Host-chatroom_session" in cookies
    page = await app.api.request("GET", "/login", headers=HTTPS)
    cookies.update(cookie_pairs(page))
    return cookies


async def test_https_cookie_post_without_the_xsrf_header_is_403(https_app):
    cookies = await https_session(https_app)
    headers = {**HTTPS, **cookie_header(cookies)}
    response = await https_app.api.request(
        "POST", "/api/rooms", {"name": "forged"}, headers=headers
    )
    assert response.code == 403
    assert body(response)["error"]["code"] == "forbidden"
    with_token = {**headers, "X-XSRFToken": cookies[SECURE_XSRF]}
    response = await https_app.api.request(
        "POST", "/api/rooms", {"name": "mine"}, headers=with_token
    )
    assert response.code == 201, response.body


async def test_https_form_encoded_logout_without_xsrf_is_refused(https_app):
    cookies = await https_session(https_app)
    headers = {
        **HTTPS,
        **cookie_header(cookies),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = await https_app.api.request("POST", "/api/logout", raw=b"", headers=headers)
    assert response.code == 403
    # The session still works: nothing was logged out.
    rooms = await https_app.api.request(
        "GET", "/api/rooms", headers={**HTTPS, **cookie_header(cookies)}
    )
    assert rooms.code == 200
    # A forged field with someone else's token does not pass either.
    raw = urlencode({"_xsrf": "2|00000000|" + "0" * 32 + "|1700000000"}).encode()
    response = await https_app.api.request("POST", "/api/logout", raw=raw, headers=headers)
    assert response.code == 403


async def test_https_xsrf_cookie_is_host_prefixed_and_secure(https_app):
    page = await https_app.api.request("GET", "/login", headers=HTTPS)
    header = set_cookie(page, SECURE_XSRF)
    assert "Secure" in header and "Path=/" in header and "SameSite=Strict" in header
    assert "Domain" not in header
    assert not [h for h in page.headers.get_list("Set-Cookie") if h.startswith("_xsrf=")]
    # The form carries the same token the cookie holds.
    assert b'name="_xsrf"' in page.body


async def test_plain_http_keeps_the_xsrf_cookie_name_and_is_not_secure(app):
    page = await app.api.request("GET", "/login")
    header = set_cookie(page, "_xsrf")
    assert "Secure" not in header


async def test_a_tossed_plain_xsrf_cookie_is_not_believed_over_https(https_app):
    cookies = await https_session(https_app)
    del cookies[SECURE_XSRF]
    cookies["_xsrf"] = "planted"  # e.g. set by a plain-HTTP page or a sibling subdomain
    headers = {**HTTPS, **cookie_header(cookies), "X-XSRFToken": "planted"}
    response = await https_app.api.request("POST", "/api/rooms", {"name": "x"}, headers=headers)
    assert response.code == 403


async def test_https_forms_need_the_host_prefixed_token(https_app):
    page = await https_app.api.request("GET", "/register", headers=HTTPS)
    token = cookie_pairs(page)[SECURE_XSRF]
    fields = {"username": "carol", "password": PASSWORD, "_xsrf": token}
    form = {**HTTPS, "Content-Type": "application/x-www-form-urlencoded"}
    plain = await https_app.api.request(
        "POST",
        "/register",
        raw=urlencode(fields).encode(),
        headers={**form, "Cookie": f"_xsrf={token}"},
    )
    assert plain.code == 403  # the HTTP name is not read over HTTPS
    ok = await https_app.api.request(
        "POST",
        "/register",
        raw=urlencode(fields).encode(),
        headers={**form, "Cookie": f"{SECURE_XSRF}={token}"},
    )
    assert ok.code == 302, ok.body


async def test_bearer_calls_need_no_xsrf_even_with_a_cookie(https_app):
    cookies = await https_session(https_app)
    token = await https_app.api.login("alice")
    headers = {**HTTPS, **cookie_header(cookies)}
    response = await https_app.api.request(
        "POST", "/api/rooms", {"name": "scripted"}, token, headers
    )
    assert response.code == 201, response.body
    assert (
        await https_app.api.request("POST", "/api/logout", token=token, headers=HTTPS)
    ).code == 200


async def test_cookieless_login_and_register_need_no_xsrf(https_app, app):
    for running, headers in ((https_app, HTTPS), (app, {})):
        registered = await running.api.request(
            "POST", "/api/register", {"username": "dave", "password": PASSWORD}, headers=headers
        )
        assert registered.code in (201, 409)
        login = await running.api.request(
            "POST", "/api/login", {"username": "dave", "password": PASSWORD}, headers=headers
        )
        assert login.code == 200


async def test_http_cookie_post_without_the_xsrf_header_is_403(app):
    await app.api.register("alice")
    login = await app.api.request("POST", "/api/login", {"username": "alice", "password": PASSWORD})
    cookies = cookie_pairs(login)
    response = await app.api.request(
        "POST", "/api/rooms", {"name": "forged"}, headers=cookie_header(cookies)
    )
    assert response.code == 403


@pytest.mark.parametrize(
    "cookie",
    ["A" * 3000, "2|1:0|10:1700000000|23:__Host-chatroom_session|4:eA==|" + "0" * 64, '"\\"'],
    ids=["huge", "bad-signature", "garbled"],
)
async def test_a_garbled_session_cookie_still_needs_xsrf_and_signs_in_no_one(https_app, cookie):
    headers = {**HTTPS, "Cookie": f"__Host-chatroom_session={cookie}"}
    assert (await https_app.api.request("GET", "/api/rooms", headers=headers)).code == 401
    response = await https_app.api.request("POST", "/api/rooms", {"name": "x"}, headers=headers)
    assert response.code == 403
