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


# The operator commands (rooms, users, history, import, stats), ``files gc`` and
# ``archive`` register themselves on ``main`` when imported.
from chatroom import (  # noqa: E402, F401 - registers the commands
    cli_archive,
    cli_files,
    cli_invites,
    cli_operator,
)
