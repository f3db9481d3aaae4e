"""The ``chatroom`` command: click options and environment variables -> Config -> a call."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click

from chatroom import __version__
from chatroom.config import (
    DURABILITY_LEVELS,
    SOURCE_LOCALE,
    Config,
    ConfigError,
    available_locales,
    default_data_dir,
)
from chatroom.datadir import DataDirError
from chatroom.embedded_redis import EmbeddedRedisError


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
@setting(
    "--redis-url",
    default=None,
    show_default="an embedded redis-server in the data directory",
    help="redis://host:port/db of an external Redis (needed for several hosts).",
)
@setting(
    "--redis-prefix", default="chatroom", help="Prefix of every Redis key, to share one Redis."
)
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
