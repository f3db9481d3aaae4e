"""Sign-up control (SPEC §6): ``SignupController`` under each ``registration`` mode,
invite codes (uses, expiry, revocation, concurrent use) and who may manage them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from chatroom.controllers import Account
from chatroom.controllers.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from chatroom.controllers.signup import SignupController
from chatroom.models import AuditEntry, Invite, User
from chatroom.models.database import utcnow
from tests.controllers.conftest import ChatEnv
from tests.helpers import PASSWORD


def signup(env: ChatEnv, mode: str) -> SignupController:
    return SignupController(env.run, env.auth, mode)


async def admin(env: ChatEnv, name: str = "teacher") -> Account:
    account = await env.user(name)
    await env.run(User.set_role, account.id, "admin")
    return Account(account.id, account.name, account.created, "admin")


async def test_open_registration_needs_no_code_and_ignores_one(env: ChatEnv) -> None:
    ctl = signup(env, "open")
    assert (await ctl.register("ann", PASSWORD)).name == "ann"
    assert (await ctl.register("ben", PASSWORD, "whatever-it-is")).name == "ben"
    with pytest.raises(ConflictError):
        await ctl.register("ANN", PASSWORD)


@pytest.mark.parametrize("invite", [None, "", "Zt9aQw3rXb7LmN2pKc5vYh8e"])
async def test_closed_registration_refuses_everyone(env: ChatEnv, invite) -> None:
    ctl = signup(env, "closed")
    if invite:
        await ctl.create_invite(None)  # a code exists, but closed means closed
    with pytest.raises(ForbiddenError, match="closed"):
        await ctl.register("ann", PASSWORD, invite)
    assert await env.run(User.by_name, "ann") is None
    # The operator still makes accounts (chatroom users create).
    assert (await env.admin.create_user("ann", PASSWORD)).name == "ann"


async def test_invite_registration_uses_the_code_once(env: ChatEnv) -> None:
    ctl = signup(env, "invite")
    made = await ctl.create_invite(None)
    assert len(made.code) == 24 and made.invite.uses == 1 and made.invite.state == "active"
    assert (await ctl.check_invite(made.code)).id == made.invite.id
    assert (await ctl.register("ann", PASSWORD, made.code)).name == "ann"
    assert await ctl.check_invite(made.code) is None
    with pytest.raises(ForbiddenError, match="not valid"):
        await ctl.register("ben", PASSWORD, made.code)
    (listed,) = await ctl.list_invites(None)
    assert (listed.used, listed.state) == (1, "used_up")
    assert "code" not in listed.public() and made.code not in str(listed.public())


@pytest.mark.parametrize(
    "invite, error",
    [
        (None, ForbiddenError),
        ("", ForbiddenError),
        ("short", ForbiddenError),
        ("x" * 65, ForbiddenError),
        ("x" * 10_000, ForbiddenError),
        ("bad code with spaces!", ForbiddenError),
        ("Zt9aQw3rXb7LmN2pKc5vYh8e", ForbiddenError),  # well formed, unknown
        ("Zt9a\u202eQw3rXb7LmN2pKc5v", ForbiddenError),
        (123, BadRequestError),
        (["code"], BadRequestError),
        ({"code": 1}, BadRequestError),
        (True, BadRequestError),
    ],
)
async def test_invite_registration_without_a_valid_code(env: ChatEnv, invite, error) -> None:
    ctl = signup(env, "invite")
    await ctl.create_invite(None, uses=5)
    with pytest.raises(error):
        await ctl.register("ann", PASSWORD, invite)
    assert await env.run(User.by_name, "ann") is None
    assert (await ctl.list_invites(None))[0].used == 0


async def test_bad_names_and_passwords_are_still_400_and_keep_the_use(env: ChatEnv) -> None:
    ctl = signup(env, "invite")
    made = await ctl.create_invite(None)
    for name, password in [("no spaces", PASSWORD), ("ann", "short"), ("x" * 33, PASSWORD)]:
        with pytest.raises(BadRequestError):
            await ctl.register(name, password, made.code)
    await env.user("taken")
    with pytest.raises(ConflictError):
        await ctl.register("TAKEN", PASSWORD, made.code)
    assert (await ctl.list_invites(None))[0].used == 0, "a refused registration used nothing"
    assert (await ctl.register("ann", PASSWORD, made.code)).name == "ann"


async def test_expired_and_revoked_codes_are_refused(env: ChatEnv) -> None:
    ctl = signup(env, "invite")
    short = await ctl.create_invite(None, uses=3, seconds=60)
    await env.run(
        lambda: Invite.update(expires=utcnow() - timedelta(seconds=1)).execute()
    )  # a minute later
    with pytest.raises(ForbiddenError):
        await ctl.register("ann", PASSWORD, short.code)
    assert (await ctl.list_invites(None))[0].state == "expired"

    revoked = await ctl.create_invite(None, uses=3)
    assert (await ctl.register("ann", PASSWORD, revoked.code)).name == "ann"
    info = await ctl.revoke_invite(None, revoked.invite.id)
    assert (info.state, info.used) == ("revoked", 1)
    with pytest.raises(ForbiddenError):
        await ctl.register("ben", PASSWORD, revoked.code)
    assert (await ctl.revoke_invite(None, str(revoked.invite.id))).state == "revoked"


async def test_concurrent_registrations_with_a_one_use_code_exactly_one_wins(
    env: ChatEnv,
) -> None:
    ctl = signup(env, "invite")
    for round_ in range(3):
        made = await ctl.create_invite(None)
        names = [f"r{round_}x{i}" for i in range(6)]
        results = await asyncio.gather(
            *(ctl.register(name, PASSWORD, made.code) for name in names),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, Account)]
        assert len(winners) == 1, results
        assert all(isinstance(r, ForbiddenError) for r in results if r not in winners), results
        made_users = [n for n in names if await env.run(User.by_name, n) is not None]
        assert made_users == [winners[0].name]


async def test_invite_parameters_are_checked(env: ChatEnv) -> None:
    ctl = signup(env, "invite")
    made = await ctl.create_invite(None, uses=1000, seconds=365 * 86400)
    assert made.invite.uses == 1000
    for uses, seconds in [
        (0, None),
        (1001, None),
        (-1, None),
        ("3", None),
        (2.5, None),
        (True, None),
        (None, 0),
        (None, 365 * 86400 + 1),
        (None, "60"),
        (None, 1e9),
        (None, [60]),
    ]:
        with pytest.raises(BadRequestError):
            await ctl.create_invite(None, uses, seconds)
    assert len(await ctl.list_invites(None)) == 1


@pytest.mark.parametrize("which", [0, -1, "0", "abc", "1.5", "9" * 30, None, True, 2**60])
async def test_revoking_a_bad_id_is_400(env: ChatEnv, which) -> None:
    with pytest.raises(BadRequestError):
        await signup(env, "invite").revoke_invite(None, which)


async def test_revoking_an_unknown_invite_is_404(env: ChatEnv) -> None:
    with pytest.raises(NotFoundError):
        await signup(env, "invite").revoke_invite(None, 4242)


async def test_only_site_admins_manage_invites_and_each_change_is_audited(env: ChatEnv) -> None:
    ctl = signup(env, "invite")
    pupil = await env.user("pupil")
    for call in (
        ctl.create_invite(pupil),
        ctl.list_invites(pupil),
        ctl.revoke_invite(pupil, 1),
    ):
        with pytest.raises(ForbiddenError):
            await call
    teacher = await admin(env)
    made = await ctl.create_invite(teacher, uses=2, seconds=3600)
    assert made.invite.created_by == "teacher"
    await ctl.revoke_invite(teacher, made.invite.id)
    await ctl.revoke_invite(teacher, made.invite.id)  # again: nothing new to log
    entries = await env.run(AuditEntry.newest)
    assert [(e.actor, e.action) for e in entries] == [
        ("teacher", "invite_revoke"),
        ("teacher", "invite_create"),
    ]
    assert made.code not in " ".join(e.detail for e in entries), "the log never holds a code"
