"""AuthController with real argon2id, SQLite sessions and the lobby membership."""

from __future__ import annotations

import pytest

from chatroom.controllers import AuthController
from chatroom.controllers.auth import PASSWORD_HASHER
from chatroom.controllers.errors import BadRequestError, ConflictError, UnauthorizedError
from chatroom.models import User
from tests.controllers.conftest import ChatEnv
from tests.helpers import PASSWORD


async def test_register_keeps_the_name_as_given_and_joins_lobby(env: ChatEnv) -> None:
    account = await env.auth.register("Alice.B-1_x", PASSWORD)
    assert account.name == "Alice.B-1_x"
    assert account.key == "alice.b-1_x"
    assert account.public()["name"] == "Alice.B-1_x"
    assert [r["name"] for r in await env.rooms.memberships(account)] == ["lobby"]


async def test_password_is_stored_as_argon2id(env: ChatEnv) -> None:
    await env.auth.register("alice", PASSWORD)
    stored = User.by_name("alice").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_login_and_authenticate(env: ChatEnv) -> None:
    registered = await env.user("Alice")
    account, token = await env.auth.login("alice", PASSWORD)  # any spelling of the name
    assert account == registered
    assert isinstance(token, str) and len(token) >= 32
    assert await env.auth.authenticate(token) == registered
    _, other = await env.auth.login("ALICE", PASSWORD)
    assert other != token


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong password"),
        ("alice", PASSWORD.upper()),
        ("alice", PASSWORD + " "),
        ("nobody", PASSWORD),
        ("", PASSWORD),
        ("alice", ""),
        (None, PASSWORD),
        ("alice", None),
        (["alice"], PASSWORD),
    ],
)
async def test_bad_credentials_are_unauthorized(env: ChatEnv, username, password) -> None:
    await env.user("alice")
    with pytest.raises(UnauthorizedError) as caught:
        await env.auth.login(username, password)
    assert caught.value.code == "unauthorized"


@pytest.mark.parametrize(
    "name", ["a", "A" * 32, "0", "a.b", "a-b", "a_b", "...", "-_-", "Mixed.Case-9_"]
)
async def test_valid_usernames(env: ChatEnv, name: str) -> None:
    assert (await env.user(name)).name == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 33,
        "has space",
        " alice",
        "alice\n",
        "ünïcode",
        "a/b",
        "a:b",
        "a@b",
        "<script>",
        "émile",
        None,
        42,
        ["alice"],
    ],
)
async def test_invalid_usernames_are_bad_requests(env: ChatEnv, name: object) -> None:
    with pytest.raises(BadRequestError) as caught:
        await env.auth.register(name, PASSWORD)
    assert caught.value.code == "bad_request"
    assert User.select().count() == 0


@pytest.mark.parametrize(
    "password",
    ["x" * 8, "x" * 256, "😀" * 8, "😀" * 256, "e\u0301" * 4, "  spaces  ", "\t\r\n\x07ctrl!"],
    ids=["8", "256", "8-astral", "256-astral", "combining", "spaces", "controls"],
)
async def test_password_lengths_in_code_points_accepted(env: ChatEnv, password: str) -> None:
    await env.auth.register("alice", password)
    account, _ = await env.auth.login("alice", password)
    assert account.name == "alice"


@pytest.mark.parametrize(
    "password",
    [
        "",
        "x" * 7,
        "x" * 257,
        "😀" * 7,
        "😀" * 257,
        "pass\x00word",
        "bad\ud800surrogate",
        None,
        12345678,
    ],
    ids=["empty", "7", "257", "7-astral", "257-astral", "nul", "surrogate", "none", "int"],
)
async def test_bad_passwords_are_bad_requests(env: ChatEnv, password: object) -> None:
    with pytest.raises(BadRequestError):
        await env.auth.register("alice", password)
    assert User.by_name("alice") is None


@pytest.mark.parametrize("second", ["alice", "Alice", "ALICE", "aLiCe"])
async def test_duplicate_names_conflict_case_insensitively(env: ChatEnv, second: str) -> None:
    await env.user("Alice")
    with pytest.raises(ConflictError) as caught:
        await env.auth.register(second, "another password")
    assert caught.value.code == "conflict"
    assert User.select().count() == 1
    # The original account is untouched.
    account, _ = await env.auth.login("alice", PASSWORD)
    assert account.name == "Alice"


async def test_logout_revokes_only_that_session(env: ChatEnv) -> None:
    alice = await env.user("alice")
    _, first = await env.auth.login("alice", PASSWORD)
    _, second = await env.auth.login("alice", PASSWORD)
    await env.auth.logout(first)
    assert await env.auth.authenticate(first) is None
    assert await env.auth.authenticate(second) == alice
    await env.auth.logout(first)  # twice is harmless
    await env.auth.logout("never-issued")
    assert await env.auth.authenticate(second) == alice


@pytest.mark.parametrize("token", [None, "", "x", "a" * 129, "a" * 10_000])
async def test_authenticate_rejects_unknown_tokens(env: ChatEnv, token: str | None) -> None:
    await env.user("alice")
    await env.auth.login("alice", PASSWORD)
    assert await env.auth.authenticate(token) is None


async def test_disabled_user_cannot_log_in_or_use_a_token(env: ChatEnv) -> None:
    await env.user("alice")
    _, token = await env.auth.login("alice", PASSWORD)
    User.update(disabled=True).where(User.name_key == "alice").execute()
    assert await env.auth.authenticate(token) is None
    with pytest.raises(UnauthorizedError):
        await env.auth.login("alice", PASSWORD)


async def test_login_upgrades_a_weaker_hash(env: ChatEnv) -> None:
    await env.user("alice")  # hashed with the cheap test parameters
    weak = User.by_name("alice").password_hash
    auth = AuthController(env.run)  # the production parameters
    account, token = await auth.login("alice", PASSWORD)
    upgraded = User.by_name("alice").password_hash
    assert upgraded != weak
    assert not PASSWORD_HASHER.check_needs_rehash(upgraded)
    assert await auth.authenticate(token) == account
    await auth.login("alice", PASSWORD)
