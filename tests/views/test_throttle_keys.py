"""The login throttle's Redis keys cannot be steered by what a client sends, IPv6
clients are throttled by /64, and rotating addresses does not buy unlimited guesses."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import redis

from chatroom.models import AuthThrottle, RedisKeys
from chatroom.storage import make_redis
from tests.helpers import PASSWORD, Browser

pytestmark = pytest.mark.timeout(90)

WRONG = "not the password"


async def login(app, name: str, password: str = WRONG, address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else None
    # json, not orjson: it writes a lone surrogate as the escape a hostile client sends.
    raw = json.dumps({"username": name, "password": password}).encode()
    return await app.api.request("POST", "/api/login", raw=raw, headers=headers)


def redis_keys(redis_url: str) -> list[str]:
    with redis.Redis.from_url(redis_url) as client:
        return [key.decode() for key in client.keys("*")]


async def test_a_username_with_a_colon_cannot_reach_another_accounts_keys(app):
    """The attack of issue 10 item 5: ``carol:127.0.0.1`` used to be the key of carol's
    failures from 127.0.0.1; her own wrong password then answered 500 (WRONGTYPE)."""
    await app.api.register("carol")
    for _ in range(12):
        assert (await login(app, "carol:127.0.0.1")).code == 401
    response = await login(app, "carol")
    assert response.code == 401, response.body
    # Not locked out of her own address beyond the normal limits: one failure
    # there is far from the per-account limit, so her right password works.
    assert (await login(app, "carol", PASSWORD)).code == 200


HOSTILE_NAMES = [
    "carol:127.0.0.1",
    "carol:127.0.0.1:127.0.0.1",
    "{carol}",
    "car*l",
    "c?rol[1]",
    "carol\\:x",
    "carol\nx",
    "carol\x00",
    "\ud800carol",
    "ü" * 40,
    "x" * 100_000,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:20]))
async def test_hostile_usernames_are_a_plain_401_and_never_part_of_a_key(app, redis_url, name):
    await app.api.register("carol")
    for _ in range(3):
        response = await login(app, name)
        # 400 where the JSON itself is refused (a lone surrogate), else 401.
        assert response.code in (400, 401), response.body
    assert (await login(app, "carol")).code == 401
    assert (await login(app, "carol", PASSWORD)).code == 200
    for key in redis_keys(redis_url):
        assert "carol" not in key and "127.0.0.1" not in key, key
        assert len(key) < 120, key


async def test_throttle_keys_of_different_kinds_never_coincide():
    keys = RedisKeys()
    names = ["carol", "carol:127.0.0.1", "carol:127.0.0.1:127.0.0.1", "{carol}"]
    addresses = ["127.0.0.1", "127.0.0.1:127.0.0.1", "2001:db8::/64"]
    made = []
    for name in names:
        made += [keys.auth_failures(name), keys.auth_slow(name), keys.auth_known(name)]
        made += [keys.auth_failed(name, address) for address in addresses]
    for address in addresses + names:
        made += [keys.auth_address(address), keys.lookup_address(address)]
    assert len(made) == len(set(made))
    for key in made:
        assert "carol" not in key and "127.0.0.1" not in key


def test_ipv6_addresses_are_throttled_by_their_64():
    from chatroom.models.auth_throttle import throttle_address  # new in 0.2

    assert throttle_address("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert throttle_address("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert throttle_address("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert throttle_address("::ffff:198.51.100.7") == "198.51.100.7"
    assert throttle_address("198.51.100.7") == "198.51.100.7"
    assert throttle_address("not an address") == "not an address"
    assert throttle_address("fe80::1%eth0") == "fe80::/64"


async def test_rotating_addresses_within_one_ipv6_64_shares_one_bucket(app_factory):
    app = await app_factory(trusted_proxies=("127.0.0.1",), auth_burst=5, auth_per_minute=1)
    await app.api.register("alice", PASSWORD)  # from 127.0.0.1: another bucket
    codes = []
    for i in range(1, 8):
        response = await login(app, "alice", address=f"2001:db8:1:2:{i:x}::{i:x}")
        codes.append(response.code)
    assert codes == [401] * 5 + [429, 429], codes
    assert int(response.headers["Retry-After"]) >= 1
    # The next /64 is another subscriber.
    assert (await login(app, "alice", address="2001:db8:1:3::1")).code == 401


async def test_one_64_at_once_gets_exactly_its_burst(app_factory):
    """Concurrent attempts: the bucket is taken atomically in Redis."""
    app = await app_factory(trusted_proxies=("127.0.0.1",), auth_burst=5, auth_per_minute=1)
    responses = await asyncio.gather(
        *(login(app, "nobody", address=f"2001:db8:9:9::{i:x}") for i in range(1, 21))
    )
    codes = sorted(r.code for r in responses)
    assert codes == [401] * 5 + [429] * 15, codes


async def test_fresh_addresses_across_64s_meet_a_slow_per_account_limit(app_factory):
    """A guesser with a new /64 for every guess used to get unlimited guesses."""
    app = await app_factory(trusted_proxies=("127.0.0.1",))
    await app.api.register("alice", PASSWORD)
    owner_home = "2001:db8:ffff::1"
    assert (await login(app, "alice", PASSWORD, address=owner_home)).code == 200
    codes = []
    for i in range(70):
        codes.append((await login(app, "alice", address=f"2001:db8:{i:x}::1")).code)
    # 60 failures from fresh addresses are allowed, then one a minute.
    assert codes[:60] == [401] * 60, codes
    assert codes[60:] == [429] * 10, codes
    fresh = await login(app, "alice", PASSWORD, address="2001:db8:abcd::1")
    assert fresh.code == 429
    assert 1 <= int(fresh.headers["Retry-After"]) <= 60
    # The owner's device that logged in before is not slowed at all.
    assert (await login(app, "alice", PASSWORD, address=owner_home)).code == 200


@pytest.fixture
async def throttle(redis_url):
    client = make_redis(redis_url)
    yield AuthThrottle(
        client,
        RedisKeys(),
        per_address=(1000, 10),
        failures_per_account=(2, 0.01),
        slow_per_account=(4, 1.0),
    )
    await client.aclose()
    await client.connection_pool.disconnect()


async def test_the_owner_on_a_new_address_gets_in_once_the_slow_bucket_refills(throttle):
    for i in range(4):
        address = f"2001:db8:{i}::1"
        assert await throttle.attempt(address, "alice") == 0
        await throttle.failed(address, "alice")
    wait = await throttle.attempt("2001:db8:77::1", "alice")
    assert 0 < wait <= 1.0
    await asyncio.sleep(wait + 0.05)
    assert await throttle.attempt("2001:db8:77::1", "alice") == 0
    await throttle.succeeded("2001:db8:77::1", "alice")
    # Other accounts never shared the budget.
    assert await throttle.attempt("2001:db8:5::1", "bob") == 0


async def test_xff_from_an_untrusted_peer_is_logged_once(app, caplog):
    caplog.set_level(logging.WARNING, logger="chatroom")
    for _ in range(3):
        await login(app, "alice", address="203.0.113.9")
    warnings = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "--trusted-proxies" in warnings[0].getMessage()


async def test_xff_from_a_trusted_proxy_is_not_logged(app_factory, caplog):
    app = await app_factory(trusted_proxies=("127.0.0.1",))
    caplog.set_level(logging.WARNING, logger="chatroom")
    await login(app, "alice", address="203.0.113.9")
    assert not [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]


async def test_dm_lookups_are_limited_per_address(app_factory):
    """``/dm?user=`` tells whether a name exists: it is limited like logins."""
    app = await app_factory(auth_burst=3, auth_per_minute=1)
    await app.api.register("alice")
    browser = Browser(app)
    await browser.post_form("/login", {"username": "alice", "password": PASSWORD})
    codes = [(await browser.get(f"/dm?user=nobody{i}")).code for i in range(4)]
    assert codes == [404, 404, 404, 429], codes
    response = await browser.get("/dm?user=alice")
    assert response.code == 429
    assert int(response.headers["Retry-After"]) >= 1


async def test_registering_taken_names_is_limited_per_address(app_factory):
    app = await app_factory(auth_burst=3, auth_per_minute=1)
    codes = [(await app.api.register("alice")).code for _ in range(4)]
    assert codes == [201, 409, 409, 429], codes
