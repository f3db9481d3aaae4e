"""The ``chatroom`` command: click options and environment variables -> Config -> a call."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click

from chatroom import __version__
from chatroom.config import Config, ConfigError, default_data_dir
from chatroom.datadir import DataDirError
from chatroom.embedded_redis import EmbeddedRedisError


def storage_options(command):
    """The options every command that opens the data shares with ``serve``."""
    options = [
        click.option(
            "--data-dir",
            envvar="CHATROOM_DATA_DIR",
            type=click.Path(file_okay=False, path_type=Path),
            default=default_data_dir,
            show_default=str(default_data_dir()),
            help="Where the SQLite database, the embedded Redis files and the cookie secret live.",
        ),
        click.option(
            "--database-url",
            envvar="CHATROOM_DATABASE_URL",
            default=None,
            show_default="SQLite in the data directory",
            help="sqlite:///path, postgresql://user:pass@host/db or mysql://user:pass@host/db.",
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
@click.option(
    "--host",
    envvar="CHATROOM_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for every interface).",
)
@click.option(
    "--port",
    envvar="CHATROOM_PORT",
    default=8888,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--redis-url",
    envvar="CHATROOM_REDIS_URL",
    default=None,
    show_default="an embedded redis-server in the data directory",
    help="redis://host:port/db of an external Redis (needed for several hosts).",
)
@click.option(
    "--redis-prefix",
    envvar="CHATROOM_REDIS_PREFIX",
    default="chatroom",
    show_default=True,
    help="Prefix of every Redis key, to share one Redis.",
)
@click.option(
    "--history-size",
    envvar="CHATROOM_HISTORY_SIZE",
    default=100,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Messages kept per room.",
)
@click.option(
    "--processes",
    envvar="CHATROOM_PROCESSES",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Worker processes; 0 means one per CPU.",
)
@click.option(
    "--allowed-origins",
    envvar="CHATROOM_ALLOWED_ORIGINS",
    default="",
    show_default=True,
    help="Comma-separated extra origins (https://host[:port]) allowed on the WebSocket.",
)
@click.option(
    "--cookie-secret",
    envvar="CHATROOM_COOKIE_SECRET",
    default=None,
    show_default="generated once into DATA_DIR/cookie_secret",
    help="Secret that signs cookies; hosts serving one chat must share it.",
)
@click.option(
    "--max-message-chars",
    envvar="CHATROOM_MAX_MESSAGE_CHARS",
    default=4000,
    show_default=True,
    type=click.IntRange(1),
    help="Longest message text.",
)
@click.option(
    "--max-frame-bytes",
    envvar="CHATROOM_MAX_FRAME_BYTES",
    default=64 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest WebSocket frame; larger ones close the socket with 1009.",
)
@click.option(
    "--max-body-bytes",
    envvar="CHATROOM_MAX_BODY_BYTES",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest HTTP request body; larger ones get 413.",
)
@click.option(
    "--db-threads",
    envvar="CHATROOM_DB_THREADS",
    default=8,
    show_default=True,
    type=click.IntRange(1),
    help="Threads running database queries and hashing.",
)
@click.option(
    "--debug/--no-debug",
    envvar="CHATROOM_DEBUG",
    default=False,
    show_default=True,
    help="Reload templates, verbose logs. Never in production.",
)
@reports_errors
def serve(allowed_origins: str, **options) -> None:
    """Run the chat server until Ctrl-C or SIGTERM."""
    from chatroom.server import serve as run_server

    origins = tuple(o for o in allowed_origins.split(",") if o.strip())
    config = Config(allowed_origins=origins, **options)
    logging.basicConfig(
        level=logging.DEBUG if config.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
