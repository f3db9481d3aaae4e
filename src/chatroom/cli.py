"""The ``chatroom`` command: click options and environment variables -> Config -> a call."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from chatroom import __version__
from chatroom.config import (
    DURABILITY_LEVELS,
    LOG_FORMATS,
    SOURCE_LOCALE,
    Config,
    ConfigError,
    available_locales,
    default_data_dir,
)
from chatroom.datadir import DataDirError
from chatroom.embedded_redis import EmbeddedRedisError
from chatroom.logs import configure_logging


def setting(flag: str, **kwargs):
    """A click option that also reads ``CHATROOM_<NAME>`` and shows it in ``--help``."""
    name = flag.lstrip("-").split("/")[0].replace("-", "_").upper()
    kwargs.setdefault("show_default", True)
    return click.option(flag, envvar=f"CHATROOM_{name}", show_envvar=True, **kwargs)


def storage_options(command):
    """The options every command that opens the data shares with ``serve``."""
    options = [
        setting(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=default_data_dir,
            show_default=str(default_data_dir()),
            help="Where the SQLite database, the embedded Redis files and the cookie secret live.",
        ),
        setting(
            "--database-url",
            default=None,
            show_default="SQLite in the data directory",
            help="sqlite:///path, postgresql://user:pass@host/db or mysql://user:pass@host/db.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def redis_options(command):
    """The Redis options ``serve`` and the operator commands share."""
    options = [
        setting(
            "--redis-url",
            default=None,
            show_default="an embedded redis-server in the data directory",
            help="redis://host:port/db of an external Redis (needed for several hosts).",
        ),
        setting(
            "--redis-prefix",
            default="chatroom",
            help="Prefix of every Redis key, to share one Redis.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


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


@main.command()
@storage_options
@setting("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every interface).")
@setting("--port", default=8888, type=click.IntRange(1, 65535), help="TCP port to listen on.")
@redis_options
@setting(
    "--history-size", default=100, type=click.IntRange(1, 100_000), help="Messages kept per room."
)
@setting("--processes", default=1, type=click.IntRange(0), help="Worker processes; 0: one per CPU.")
@setting(
    "--allowed-origins",
    default="",
    help="Comma-separated extra origins (https://host[:port]) allowed on the WebSocket.",
)
@setting(
    "--cookie-secret",
    default=None,
    show_default="generated once into DATA_DIR/cookie_secret",
    help="Secret that signs cookies; hosts serving one chat must share it.",
)
@setting("--max-message-chars", default=4000, type=click.IntRange(1), help="Longest message text.")
@setting(
    "--max-frame-bytes",
    default=64 * 1024,
    type=click.IntRange(1024),
    help="Largest WebSocket frame; a larger one closes the socket with 1009.",
)
@setting(
    "--max-body-bytes",
    default=1024 * 1024,
    type=click.IntRange(1024),
    help="Largest HTTP request body; a larger one gets 413.",
)
@setting(
    "--max-queued-bytes",
    default=1024 * 1024,
    type=click.IntRange(1024),
    help="Bytes waiting to be sent to one socket before it is closed as too slow (1013).",
)
@setting(
    "--max-queued-frames",
    default=1000,
    type=click.IntRange(10),
    help="Frames waiting to be sent to one socket before it is closed as too slow (1013).",
)
@setting(
    "--stall-seconds",
    default=10.0,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds written data may stay unacknowledged before the socket is closed (1013).",
)
@setting(
    "--ping-interval",
    default=25.0,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between the server's WebSocket pings.",
)
@setting(
    "--ping-timeout",
    default=10.0,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a pong may take before the socket is closed; at most --ping-interval.",
)
@setting(
    "--metrics-port",
    default=0,
    type=click.IntRange(0, 65535),
    show_default="0: off",
    help="Serve Prometheus /metrics on this port (worker N of --processes: port + N).",
)
@setting("--metrics-host", default="127.0.0.1", help="Address of the /metrics listener.")
@setting(
    "--log-format",
    default="text",
    type=click.Choice(LOG_FORMATS),
    help="text: readable lines; json: one JSON object per line.",
)
@setting(
    "--trusted-proxies",
    default="",
    help="Comma-separated proxy addresses/networks whose X-Forwarded-Proto/-For are believed.",
)
@setting(
    "--durability",
    default="fast",
    type=click.Choice(DURABILITY_LEVELS),
    help="fast: Redis fsyncs every second; strict: acknowledge only fsynced messages.",
)
@setting(
    "--auth-burst",
    default=20,
    type=click.IntRange(1),
    help="Login/register attempts one client address may make at once.",
)
@setting(
    "--auth-per-minute",
    default=20.0,
    type=click.FloatRange(min=0, min_open=True),
    help="Login/register attempts per minute one client address may sustain.",
)
@setting(
    "--send-burst",
    default=10,
    type=click.IntRange(1),
    help="Messages a user may send at once (the token bucket's size).",
)
@setting(
    "--send-per-second",
    default=2.0,
    type=click.FloatRange(min=0, min_open=True),
    help="Messages per second a user may sustain (the token bucket's refill).",
)
@setting("--db-threads", default=8, type=click.IntRange(1), help="Threads for SQL and hashing.")
@setting(
    "--default-locale",
    default=SOURCE_LOCALE,
    type=click.Choice(available_locales()),
    help="UI language when neither the user's choice nor the browser's languages match one.",
)
@setting(
    "--debug/--no-debug", default=False, help="Reload templates, verbose logs; not for production."
)
@reports_errors
def serve(allowed_origins: str, trusted_proxies: str, **options) -> None:
    """Run the chat server until Ctrl-C or SIGTERM."""
    from chatroom.server import serve as run_server

    origins = tuple(o for o in allowed_origins.split(",") if o.strip())
    proxies = tuple(p for p in trusted_proxies.split(",") if p.strip())
    config = Config(allowed_origins=origins, trusted_proxies=proxies, **options)
    configure_logging(config.log_format, config.debug)
    sys.exit(run_server(config, echo=click.echo))


@main.command()
@storage_options
@reports_errors
def initdb(data_dir: Path, database_url: str | None) -> None:
    """Create or upgrade the database and the room "lobby"; keeps all data."""
    from chatroom.server import initialise_database

    config = Config(data_dir=data_dir, database_url=database_url)
    if initialise_database(config):
        click.echo(f"Initialised a new database at {config.effective_database_url}")
    else:
        click.echo(f"Database at {config.effective_database_url} is up to date")


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
    from chatroom.server import run_admin

    try:
        return run_admin(Config(**storage), action)
    except ChatError as exc:
        click.echo(f"chatroom: {exc.message}", err=True)
        sys.exit(2 if exc.code == "unavailable" else 1)


def show(result, as_json: bool) -> None:
    """Print a result of the admin controller: as JSON, or as text lines."""
    rows = result if isinstance(result, list) else None
    if as_json:
        data = [row.public() for row in rows] if rows is not None else result.public()
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for line in [row.line() for row in rows] if rows is not None else result.lines():
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
    """Give the account NAME a new password; asks for it."""
    password = read_password(password_stdin)
    user = operate(storage, lambda admin: admin.set_password(name, password))
    click.echo(f"Set a new password for {user.name}")


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
    """Export the retained messages of ROOM, oldest first.

    Each message is a line "id  time  user: text" (UTC, control characters
    escaped), or, with --json, an object of a JSON array.
    """
    show(operate(storage, lambda admin: admin.history(room, since)), as_json)


@main.command()
@json_option
@operator_options
@reports_errors
def stats(as_json: bool, **storage) -> None:
    """Count rooms, users, retained messages and the clients connected now."""
    show(operate(storage, lambda admin: admin.stats()), as_json)
