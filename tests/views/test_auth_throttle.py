"""Password guessing is slowed per address and per account, without locking the owner out."""

from __future__ import annotations

import pytest

from chatroom.models import AuthThrottle, RedisKeys
from chatroom.storage import make_redis
from tests.helpers import PASSWORD, body


async def test_one_address_is_limited_with_retry_after(app_factory):
    app = await app_factory(auth_burst=5, auth_per_minute=6)
    assert (await app.api.register("alice")).code == 201  # attempt 1
    codes = []
    for _ in range(6):
        response = await app.api.request(
            "POST", "/api/login", {"username": "alice", "password": "not the password"}
        )
        codes.append(response.code)
    assert codes[:4] == [401] * 4 and codes[4:] == [429, 429]
    error = body(response)["error"]
    assert error["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
async def throttle(redis_url):
    client = make_redis(redis_url)
    yield AuthThrottle(client, RedisKeys(), per_address=(1000, 10), failures_per_account=(3, 0.01))
    await client.aclose()
    await client.connection_pool.disconnect()


async def test_a_guessed_account_stays_open_to_its_owner(throttle):
    guesser, owner = "198.51.100.7", "203.0.113.5"
    for _ in range(3):
        assert await throttle.attempt(guesser, "alice") == 0
        await throttle.failed(guesser, "alice")
    # The account's failure budget is spent: the guesser must wait ...
    assert await throttle.attempt(guesser, "alice") > 0
    # ... and so must a new address after its own first failure,
    assert await throttle.attempt("192.0.2.1", "alice") == 0
    await throttle.failed("192.0.2.1", "alice")
    assert await throttle.attempt("192.0.2.1", "alice") > 0
    # ... but the owner, who never failed from their address, gets in.
    assert await throttle.attempt(owner, "alice") == 0
    await throttle.succeeded(owner, "alice")
    # Other accounts are untouched.
    assert await throttle.attempt(guesser, "bob") == 0


async def test_the_real_owner_logs_in_after_many_wrong_passwords(app_factory):
    app = await app_factory()
    await app.api.register("alice")
    for _ in range(25):
        response = await app.api.request(
            "POST", "/api/login", {"username": "alice", "password": "wrong wrong"}
        )
        assert response.code in (401, 429)
    # Same address as the guesses here (tests share 127.0.0.1): it must wait,
    # but the owner's own device (an address with no failures) is let in.
    throttled = await app.api.request(
        "POST", "/api/login", {"username": "alice", "password": PASSWORD}
    )
    assert throttled.code == 429
    owner = await app.api.request(
        "POST",
        "/api/login",
        {"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.5"},
    )
    assert owner.code == 429  # X-Forwarded-For is ignored without --trusted-proxies
    trusted = await app_factory(trusted_proxies=("127.0.0.1",))
    owner = await trusted.api.request(
        "POST",
        "/api/login",
        {"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.5"},
    )
    assert owner.code == 200
