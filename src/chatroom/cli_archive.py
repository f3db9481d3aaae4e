"""``chatroom archive``: the archiver and retention in a process of their own (SPEC §7)."""

from __future__ import annotations

import sys

import click

from chatroom.archiver_child import ARCHIVER_SETTINGS
from chatroom.cli import config_options, main, reports_errors
from chatroom.cli_operator import operator_options
from chatroom.config import Config
from chatroom.logs import configure_logging

#: The settings of ``serve`` that the archiver uses besides the storage ones: give it
#: the servers' values (the same CHATROOM_* variables do; ``serve --archiver process``
#: sets them for its child).
archiver_options = config_options(*ARCHIVER_SETTINGS)


@main.command()
@archiver_options
@operator_options
@reports_errors
def archive(**options) -> None:
    """Copy messages from Redis to the SQL archive, and apply retention, until Ctrl-C or
    SIGTERM; for servers run with --archiver off (serve --archiver process runs one)."""
    from chatroom.archive_process import run_archiver

    config = Config(**options)
    configure_logging(config.log_format, config.debug)
    sys.exit(run_archiver(config, echo=click.echo))
