"""Helpers of the moderation tests (SPEC §6): rooms with owners and site admins."""

from __future__ import annotations

import dataclasses

from chatroom.controllers.accounts import Account
from chatroom.models import AuditEntry, User
from tests.controllers.conftest import ChatEnv


async def promote(env: ChatEnv, account: Account, role: str = "admin") -> Account:
    """Make ``account`` a site admin in SQL (as ``chatroom users promote`` does)."""
    await env.run(User.set_role, account.id, role)
    return dataclasses.replace(account, role=role)


def audit() -> list[tuple]:
    """The audit log, newest first, as (actor, action, target, room, detail)."""
    return [(e.actor, e.action, e.target, e.room, e.detail) for e in AuditEntry.newest()]


async def private_club(env: ChatEnv) -> tuple[Account, Account, Account]:
    """alice owns the private room ``club``; bob is a member, carol a stranger."""
    alice, bob, carol = [await env.user(n) for n in ("alice", "bob", "carol")]
    await env.rooms.create(alice, "club", None, True)
    await env.graph.moderation.add_member(alice, "club", "bob")
    return alice, bob, carol


async def public_general(env: ChatEnv) -> tuple[Account, Account, Account]:
    """alice owns the public room ``general``; bob and carol are members."""
    alice, bob, carol = [await env.user(n) for n in ("alice", "bob", "carol")]
    await env.rooms.create(alice, "general")
    await env.rooms.join(bob, "general")
    await env.rooms.join(carol, "general")
    return alice, bob, carol
