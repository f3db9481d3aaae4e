"""``chatroom files gc``: remove uploaded files nobody can reach (SPEC §9)."""

from __future__ import annotations

import click

from chatroom.cli import config_options, main, reports_errors
from chatroom.cli_operator import json_option, operator_options, refusals_reported, show
from chatroom.config import Config


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
    from chatroom.operator_commands import run_files

    with refusals_reported():
        return run_files(config, action)
