"""The ``chatroom`` command: click options and environment variables -> Config -> a call."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from chatroom import __version__
from chatroom.config import Config, ConfigError, Setting, redact_url, settings
from chatroom.datadir import PRIVATE_UMASK, DataDirError
from chatroom.embedded_redis import EmbeddedRedisError
from chatroom.logs import configure_logging

#: A click decorator: takes a command function and returns it with options added.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class _ShownIntRange(click.IntRange):
    """An integer whose range ``--help`` shows; ``Config`` checks it, for every source alike."""

    def convert(self, value, param, ctx):
        return click.INT.convert(value, param, ctx)


class _ShownFloatRange(click.FloatRange):
    """A number whose range ``--help`` shows; ``Config`` checks it, for every source alike."""

    def convert(self, value, param, ctx):
        return click.FLOAT.convert(value, param, ctx)


class _Parsed(click.ParamType):
    """Text that the setting's own parser turns into its value (e.g. a comma-separated list)."""

    name = "text"

    def __init__(self, parse: Callable[[str], Any]) -> None:
        self.parse = parse

    def convert(self, value, param, ctx):
        return self.parse(value) if isinstance(value, str) else value


def _click_type(entry: Setting) -> click.ParamType:
    """How click converts the text of one setting: ranges and choices come from the registry."""
    if entry.parse is not None:
        return _Parsed(entry.parse)
    if entry.allowed():
        return click.Choice(entry.allowed())
    if entry.type is Path:
        return click.Path(file_okay=False, path_type=Path)
    if entry.type in (int, float):
        if entry.min is None and entry.max is None:
            return click.INT if entry.type is int else click.FLOAT
        shown = _ShownIntRange if entry.type is int else _ShownFloatRange
        return shown(entry.min, entry.max, min_open=entry.min_open)
    return click.BOOL if entry.type is bool else click.STRING


def config_option(entry: Setting) -> Decorator:
    """The click option of one ``Config`` setting: ``--<name>``, ``CHATROOM_<NAME>``, help."""
    flag, default, shown = entry.flag, entry.default, entry.show_default
    if entry.type is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    if callable(default):  # computed at run time; show what it computes here
        shown = shown or str(default())
    elif isinstance(default, tuple):
        default = ",".join(default)
    return click.option(
        flag,
        type=_click_type(entry),
        default=default,
        envvar=entry.env_var,
        show_envvar=True,
        show_default=shown or True,
        help=entry.help,
    )


def config_options(*names: str) -> Decorator:
    """A decorator adding the options of these settings, in this order; none named: all."""
    registry = {entry.name: entry for entry in settings()}
    chosen = [registry[name] for name in names] if names else list(registry.values())

    def decorate(command):
        for entry in reversed(chosen):
            command = config_option(entry)(command)
        return command

    return decorate


#: The options every command that opens the data shares with ``serve``.
storage_options = config_options("data_dir", "database_url")
#: The Redis options ``serve`` and the operator commands share.
redis_options = config_options("redis_url", "redis_prefix")


def reports_errors(command):
    """Turn configuration and startup failures into one clear line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ConfigError, DataDirError, EmbeddedRedisError) as exc:
            click.echo(f"chatroom: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatroom")
def main() -> None:
    """chatroom: a self-hosted real-time chat room."""
    # What any command writes (the SQLite database and its WAL, files in the data
    # directory) is its owner's only, whatever umask it was started with.
    os.umask(PRIVATE_UMASK)


@main.command()
@config_options()
@reports_errors
def serve(**options) -> None:
    """Run the chat server until Ctrl-C or SIGTERM."""
    from chatroom.server import serve as run_server

    config = Config(**options)
    configure_logging(config.log_format, config.debug)
    sys.exit(run_server(config, echo=click.echo))


@main.command()
@storage_options
@reports_errors
def initdb(data_dir: Path, database_url: str | None) -> None:
    """Create or upgrade the database and the room "lobby"; keeps all data."""
    from chatroom.storage import initialise_database

    config = Config(data_dir=data_dir, database_url=database_url)
    where = redact_url(config.effective_database_url)
    if initialise_database(config):
        click.echo(f"Initialised a new database at {where}")
    else:
        click.echo(f"Database at {where} is up to date")


# -- operator commands: rooms, users, history, stats ------------------------------


def operator_options(command):
    """The storage options of ``serve``: the same data, also while a server runs."""
    return storage_options(redis_options(command))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
password_stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)


def operate(storage: dict, action):
    """Run ``action(admin)`` on the data the options name; a refusal is one line, exit 1."""
    from chatroom.controllers.errors import ChatError
    from chatroom.operator_commands import run_admin

    try:
        return run_admin(Config(**storage), action)
    except ChatError as exc:
        click.echo(f"chatroom: {exc.message}", err=True)
        sys.exit(2 if exc.code == "unavailable" else 1)


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
@operator_options
@reports_errors
def users_create(name: str, password_stdin: bool, **storage) -> None:
    """Create the account NAME, a member of lobby; asks for its password."""
    password = read_password(password_stdin)
    user = operate(storage, lambda admin: admin.create_user(name, password))
    click.echo(f"Created the user {user.name}")


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
    escaped), or, with --json, a JSON object per line (JSON lines) with its id
    and timestamp, which "chatroom import" loads.
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
@json_option
@operator_options
@reports_errors
def stats(as_json: bool, **storage) -> None:
    """Count rooms, users, retained messages and the clients connected now."""
    show(operate(storage, lambda admin: admin.stats()), as_json)


# -- issue 15: chatroom files gc ----------------------------------------------------


@main.group()
def files() -> None:
    """Uploaded files (SPEC §9)."""


#: The file storage options of ``serve`` (``files gc`` must see the same store).
files_storage_options = config_options("files_dir", "files_url")


@files.command("gc")
@click.option(
    "--grace-hours",
    type=click.FloatRange(0),
    default=24.0,
    show_default=True,
    help="Leave files and stored objects younger than this alone (uploads not yet sent).",
)
@json_option
@files_storage_options
@operator_options
@reports_errors
def files_gc(grace_hours: float, as_json: bool, files_dir, files_url, **storage) -> None:
    """Remove files nobody can reach: never sent after the grace period, or whose room is
    gone; and stored objects no file uses."""
    config = Config(**storage, files_dir=files_dir, files_url=files_url)
    show(operate_files(config, lambda files: files.gc(grace_hours * 3600)), as_json)


def operate_files(config: Config, action):
    """Run ``action(files_controller)`` on the files the options name; refusals as ``operate``."""
    from chatroom.controllers.errors import ChatError
    from chatroom.operator_commands import run_files

    try:
        return run_files(config, action)
    except ChatError as exc:
        click.echo(f"chatroom: {exc.message}", err=True)
        sys.exit(2 if exc.code == "unavailable" else 1)
