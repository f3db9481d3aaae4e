"""The admin page's actions (SPEC §6): ``SiteAdminController`` over the operator's
``AdminController``, with the site admin's name in the audit log."""

from __future__ import annotations

import pytest

from chatroom.controllers import Account
from chatroom.controllers.errors import BadRequestError, ForbiddenError, NotFoundError
from chatroom.models import AuditEntry, User
from tests.controllers.conftest import ChatEnv


async def admin(env: ChatEnv, name: str = "teacher") -> Account:
    account = await env.user(name)
    await env.run(User.set_role, account.id, "admin")
    return Account(account.id, account.name, account.created, "admin")


async def audit(env: ChatEnv) -> list[tuple]:
    return [(e.actor, e.action, e.target) for e in await env.run(AuditEntry.newest)]


async def test_admins_list_users_and_others_may_not(env: ChatEnv) -> None:
    teacher, pupil = await admin(env), await env.user("pupil")
    users = await env.graph.site_admin.users(teacher)
    assert [(u.name, u.role, u.disabled) for u in users] == [
        ("pupil", "user", False),
        ("teacher", "admin", False),
    ]
    with pytest.raises(ForbiddenError):
        await env.graph.site_admin.users(pupil)
    with pytest.raises(ForbiddenError):
        await env.graph.site_admin.update_user(pupil, "teacher", disabled=True)
    assert await audit(env) == []


async def test_disable_ends_sessions_and_closes_sockets_and_is_audited(env: ChatEnv) -> None:
    teacher, pupil = await admin(env), await env.user("pupil")
    _, token = await env.auth.login("pupil", "correct horse battery")
    conn = await env.joined(pupil)
    info = await env.graph.site_admin.update_user(teacher, "PUPIL", disabled=True)
    assert info.disabled and info.sessions == 0
    await conn.wait_until(lambda _frames: conn.closed is not None)
    assert conn.closed[0] == 1008
    assert await env.auth.authenticate(token) is None
    again = await env.graph.site_admin.update_user(teacher, "pupil", disabled=True)
    assert again.disabled
    info = await env.graph.site_admin.update_user(teacher, "pupil", disabled=False)
    assert not info.disabled
    assert await audit(env) == [("teacher", "enable", "pupil"), ("teacher", "disable", "pupil")]


async def test_promote_and_demote_both_at_once_with_disable(env: ChatEnv) -> None:
    teacher, _ = await admin(env), await env.user("helper")
    info = await env.graph.site_admin.update_user(teacher, "helper", role="admin")
    assert info.role == "admin"
    info = await env.graph.site_admin.update_user(teacher, "helper", role="user", disabled=True)
    assert (info.role, info.disabled) == ("user", True)
    assert await audit(env) == [
        ("teacher", "disable", "helper"),
        ("teacher", "demote", "helper"),
        ("teacher", "promote", "helper"),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"disabled": True},
        {"role": "user"},
        {"role": "user", "disabled": False},
    ],
)
async def test_an_admin_cannot_lock_themself_out(env: ChatEnv, changes: dict) -> None:
    teacher = await admin(env)
    with pytest.raises(ForbiddenError, match="yourself"):
        await env.graph.site_admin.update_user(teacher, "Teacher", **changes)
    (me,) = await env.graph.site_admin.users(teacher)
    assert (me.role, me.disabled) == ("admin", False)
    # Harmless changes to oneself are fine.
    assert (
        await env.graph.site_admin.update_user(teacher, "teacher", role="admin")
    ).role == "admin"


@pytest.mark.parametrize(
    "name, changes, error",
    [
        ("pupil", {}, BadRequestError),
        ("pupil", {"disabled": "yes"}, BadRequestError),
        ("pupil", {"disabled": 1}, BadRequestError),
        ("pupil", {"role": "owner"}, BadRequestError),
        ("pupil", {"role": ["admin"]}, BadRequestError),
        ("pupil", {"role": {"a": 1}}, BadRequestError),
        ("nobody", {"disabled": True}, NotFoundError),
        ("nobody", {"role": "admin"}, NotFoundError),
        ("bad name!", {"disabled": True}, BadRequestError),
        ("x" * 5000, {"role": "admin"}, BadRequestError),
        (None, {"role": "admin"}, BadRequestError),
    ],
)
async def test_bad_changes_are_refused_and_change_nothing(env: ChatEnv, name, changes, error):
    teacher = await admin(env)
    await env.user("pupil")
    with pytest.raises(error):
        await env.graph.site_admin.update_user(teacher, name, **changes)
    users = await env.graph.site_admin.users(teacher)
    assert [(u.name, u.role, u.disabled) for u in users] == [
        ("pupil", "user", False),
        ("teacher", "admin", False),
    ]
    assert await audit(env) == []
