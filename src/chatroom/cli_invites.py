"""``chatroom invites create|list|revoke``: sign-up invite codes from the operator's
shell (SPEC §6), for ``--registration invite``."""

from __future__ import annotations

import click

from chatroom.cli import main, reports_errors
from chatroom.cli_operator import json_option, operator_options, refusals_reported, show
from chatroom.config import Config
from chatroom.models.invites import DEFAULT_INVITE_SECONDS, MAX_INVITE_SECONDS, MAX_INVITE_USES


@main.group()
def invites() -> None:
    """Invite codes for signing up when registration is by invite (SPEC §6)."""


def operate_invites(storage: dict, action):
    """Run ``action(signup_controller)`` on the database the options name (no Redis)."""
    from chatroom.operator_commands import run_invites

    with refusals_reported():
        return run_invites(Config(**storage), action)


@invites.command("create")
@click.option(
    "--uses",
    type=click.IntRange(1, MAX_INVITE_USES),
    default=1,
    show_default=True,
    help="How many accounts the code may make.",
)
@click.option(
    "--seconds",
    type=click.IntRange(1, MAX_INVITE_SECONDS),
    default=DEFAULT_INVITE_SECONDS,
    show_default=True,
    help="How long the code lasts.",
)
@click.option(
    "--url",
    "base_url",
    default=None,
    metavar="URL",
    help="The chat's address (https://chat.example.org): print the invite link too.",
)
@json_option
@operator_options
@reports_errors
def invites_create(uses: int, seconds: int, base_url: str | None, as_json: bool, **storage) -> None:
    """Make an invite code; it is printed this once (only a digest is stored)."""
    from chatroom.cli_output import printable_json

    made = operate_invites(storage, lambda signup: signup.create_invite(None, uses, seconds))
    link = f"{base_url.rstrip('/')}/register?invite={made.code}" if base_url else None
    if as_json:
        click.echo(printable_json({**made.public(), "url": link}))
        return
    expires = made.invite.public()["expires"]
    click.echo(f"Created the invite #{made.invite.id}: {uses} uses until {expires}")
    click.echo(f"Code: {made.code}")
    click.echo(f"Link: {link or '<the chat address>/register?invite=' + made.code}")


@invites.command("list")
@json_option
@operator_options
@reports_errors
def invites_list(as_json: bool, **storage) -> None:
    """List the invites, newest first, with their uses and state (never their codes)."""
    show(operate_invites(storage, lambda signup: signup.list_invites(None)), as_json)


@invites.command("revoke")
@click.argument("invite_id", metavar="ID")
@operator_options
@reports_errors
def invites_revoke(invite_id: str, **storage) -> None:
    """Revoke the invite ID (from "chatroom invites list"): its uses left are refused."""
    invite = operate_invites(storage, lambda signup: signup.revoke_invite(None, invite_id))
    click.echo(f"Revoked the invite #{invite.id} ({invite.prefix}…)")
