"""The operator commands of ``chatroom``: rooms, users, history, import, audit, stats.

Each opens the data the ``serve`` storage options name (also while a server
runs), calls the admin controller through ``operator_commands.run_admin`` and
prints its result as text or JSON. ``main`` (cli.py) imports this module, which
adds the commands to it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from chatroom.cli import main, redis_options, reports_errors, storage_options
from chatroom.config import Config


def operator_options(command):
    """The storage options of ``serve``: the same data, also while a server runs."""
    return storage_options(redis_options(command))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)


@contextlib.contextmanager
def refusals_reported() -> Iterator[None]:
    """A refusal of the controllers (``ChatError``) becomes one line on standard error
    and exit code 1 (2 when the storage is unavailable)."""
    from chatroom.controllers.errors import ChatError

    try:
        yield
    except ChatError as exc:
        click.echo(f"chatroom: {exc.message}", err=True)
        sys.exit(2 if exc.code == "unavailable" else 1)


def operate(storage: dict, action):
    """Run ``action(admin)`` on the data the options name; a refusal is one line, exit 1."""
    from chatroom.operator_commands import run_admin

    with refusals_reported():
        return run_admin(Config(**storage), action)


def show(result, as_json: bool) -> None:
    """Print a result of the admin controller: as JSON, or as text lines; either way
    with control and bidi characters escaped (see ``chatroom.cli_output``)."""
    from chatroom.cli_output import json_text, text_lines

    if as_json:
        click.echo(json_text(result))
        return
    for line in text_lines(result):
        click.echo(line)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def rooms() -> None:
    """List, create and delete rooms."""


@rooms.command("list")
@operator_options
@json_option
@reports_errors
def rooms_list(as_json: bool, **storage) -> None:
    """List every room (direct ones too) with its members and retained messages."""
    show(operate(storage, lambda admin: admin.list_rooms()), as_json)


@rooms.command("create")
@click.argument("name")
@click.option("--topic", default=None, help="The room's topic, shown under its name.")
@operator_options
@reports_errors
def rooms_create(name: str, topic: str | None, **storage) -> None:
    """Create the public room NAME."""
    room = operate(storage, lambda admin: admin.create_room(name, topic))
    click.echo(f"Created the room {room.name}")


@rooms.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")
@operator_options
@reports_errors
def rooms_delete(name: str, yes: bool, **storage) -> None:
    """Delete the room NAME with its memberships and history (never lobby)."""
    if not yes:
        click.confirm(f"Delete the room {name!r} with its memberships and history?", abort=True)
    members, messages = operate(storage, lambda admin: admin.delete_room(name))
    click.echo(f"Deleted the room {name} ({members} members, {messages} messages)")


@main.group()
def users() -> None:
    """List, create, disable and enable accounts, and set passwords."""


@users.command("list")
@operator_options
@json_option
@reports_errors
def users_list(as_json: bool, **storage) -> None:
    """List every account with its live sessions and whether it is disabled."""
    show(operate(storage, lambda admin: admin.list_users()), as_json)


@users.command("create")
@click.argument("name")
@password_stdin_option
@click.option("--admin", is_flag=True, help="Make the account a site admin (SPEC §6).")
@operator_options
@reports_errors
def users_create(name: str, password_stdin: bool, admin: bool, **storage) -> None:
    """Create the account NAME, a member of lobby; asks for its password."""
    password = read_password(password_stdin)
    user = operate(storage, lambda ctl: ctl.create_user(name, password, admin))
    click.echo(f"Created the {'site admin' if admin else 'user'} {user.name}")


@users.command("promote")
@click.argument("name")
@operator_options
@reports_errors
def users_promote(name: str, **storage) -> None:
    """Make the account NAME a site admin: it moderates lobby and every public room."""
    user, changed = operate(storage, lambda admin: admin.set_role(name, "admin"))
    click.echo(f"{user.name} is {'now' if changed else 'already'} a site admin")


@users.command("demote")
@click.argument("name")
@operator_options
@reports_errors
def users_demote(name: str, **storage) -> None:
    """Make the site admin NAME a plain user again."""
    user, changed = operate(storage, lambda admin: admin.set_role(name, "user"))
    click.echo(f"{user.name} is {'now' if changed else 'already'} a plain user")


@users.command("set-password")
@click.argument("name")
@password_stdin_option
@operator_options
@reports_errors
def users_set_password(name: str, password_stdin: bool, **storage) -> None:
    """Give the account NAME a new password and sign it out everywhere; asks for it."""
    password = read_password(password_stdin)
    user, ended = operate(storage, lambda admin: admin.set_password(name, password))
    click.echo(f"Set a new password for {user.name} ({ended} sessions ended)")


@users.command("disable")
@click.argument("name")
@operator_options
@reports_errors
def users_disable(name: str, **storage) -> None:
    """Disable the account NAME: sign it out everywhere and refuse its logins."""
    user, revoked = operate(storage, lambda admin: admin.disable_user(name))
    click.echo(f"Disabled {user.name} ({revoked} sessions revoked)")


@users.command("enable")
@click.argument("name")
@operator_options
@reports_errors
def users_enable(name: str, **storage) -> None:
    """Let the disabled account NAME log in again."""
    user = operate(storage, lambda admin: admin.enable_user(name))
    click.echo(f"Enabled {user.name}")


@main.command()
@click.argument("room")
@click.option(
    "--since", type=click.IntRange(0), default=None, help="Only the messages after this id."
)
@json_option
@operator_options
@reports_errors
def history(room: str, since: int | None, as_json: bool, **storage) -> None:
    """Export every message of ROOM (the archive and Redis), oldest first.

    Each message is a line "id  time  user: text" (UTC, control characters
    escaped; a deleted message as "[message deleted]", a reply led by "↳ reply
    to #ID", an edit followed by "(edited TIME)", reactions as "[EMOJI COUNT]"),
    or, with --json, a JSON object per line (JSON lines) with its id, timestamp
    and the edited, deleted, reply_to and reactions fields, which "chatroom
    import" loads.
    """
    from chatroom.cli_output import printable_json

    result = operate(storage, lambda admin: admin.history(room, since))
    if not as_json:
        show(result, as_json)
        return
    for message in result.public():
        click.echo(printable_json(message, indent=None))


@main.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--room", default=None, help="The room to load into (default: the export's).")
@operator_options
@reports_errors
def import_(file, room: str | None, **storage) -> None:
    """Load FILE, written by "chatroom history ROOM --json", into an empty room.

    Ids and timestamps are kept; the room must exist and hold no message.
    """
    import orjson

    lines = file.read().splitlines()
    if room is None:
        first = next((line for line in lines if line.strip()), None)
        try:
            room = orjson.loads(first)["room"] if first else None
        except (orjson.JSONDecodeError, TypeError, KeyError):
            room = None
        if not isinstance(room, str):
            raise click.UsageError("name the room with --room: the first line has none")
    count = operate(storage, lambda admin: admin.import_history(room, lines))
    click.echo(f"Imported {count} messages into {room}")


@main.command()
@click.option("--room", default=None, help="Only this room's entries.")
@json_option
@operator_options
@reports_errors
def audit(room: str | None, as_json: bool, **storage) -> None:
    """List the moderation actions, newest first: who did what to whom, where, when."""
    show(operate(storage, lambda admin: admin.audit(room)), as_json)


@main.command()
@json_option
@operator_options
@reports_errors
def stats(as_json: bool, **storage) -> None:
    """Count rooms, users, retained messages and the clients connected now."""
    show(operate(storage, lambda admin: admin.stats()), as_json)
