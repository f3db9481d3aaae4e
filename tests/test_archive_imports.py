"""``chatroom archive`` (and so ``serve --archiver process``'s child) imports what
archiving and retention need, not a serving process's modules (docs/archive.md#its-memory).

A real ``python -X importtime -m chatroom archive`` on a real Redis runs an archiver
pass and a retention pass and stops on SIGTERM; its import log names every module it
imported, at start or later, which is checked against the serving-only ones.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import chatroom.controllers
from tests.processes import free_port, metric, until

pytestmark = pytest.mark.timeout(60)

#: Modules of a serving process that an archiver has no use for: password hashing,
#: images, the handlers and the app, the chat and auth controllers, the whole graph.
SERVING_ONLY = (
    "argon2",
    "PIL",
    "boto3",  # only with --files-url s3://..., which these tests do not set
    "chatroom.app",
    "chatroom.wiring",
    "chatroom.cli_output",
    "chatroom.views.socket",
    "chatroom.views.api",
    "chatroom.controllers.auth",
    "chatroom.controllers.chat",
    "chatroom.controllers.admin",
)


def imported_modules(importtime_log: str) -> set[str]:
    """The modules ``-X importtime`` reports (``import time: self | cumulative | name``)."""
    return {
        line.split("|")[-1].strip()
        for line in importtime_log.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    }


def _loaded(modules: set[str], prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in modules)


async def run_archiver(tmp_path: Path, redis_url: str, *args: str) -> set[str]:
    """Run ``chatroom archive`` until it has taken both locks (an archiver pass and a
    retention pass ran), stop it with SIGTERM; the modules it imported."""
    log_path = tmp_path / "archive.log"
    command = [sys.executable, "-X", "importtime", "-m", "chatroom", "archive"]
    command += ["--data-dir", str(tmp_path / "data"), "--redis-url", redis_url]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "--retention-days", "1", *args], stdout=log, stderr=subprocess.STDOUT
        )
    client = redis.Redis.from_url(redis_url)
    try:

        async def both_locks() -> bool:
            return client.exists("chatroom:lock:archiver", "chatroom:lock:retention") == 2

        await until(both_locks, what="an archiver pass and a retention pass")
        if "--metrics-port" in args:
            port = int(args[args.index("--metrics-port") + 1])
            assert await metric(port, "chatroom_archive_lag_messages") == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log_path.read_text(errors="replace")
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    return imported_modules(log_path.read_text(errors="replace"))


async def test_the_archiver_imports_none_of_the_serving_modules(tmp_path, redis_url):
    modules = await run_archiver(tmp_path, redis_url)
    assert {"chatroom.controllers.archive", "chatroom.controllers.files", "peewee"} <= modules
    assert [name for name in SERVING_ONLY if _loaded(modules, name)] == []
    assert not _loaded(modules, "tornado")  # no --metrics-port: no HTTP server at all


async def test_with_metrics_the_archiver_imports_tornado_for_them_alone(tmp_path, redis_url):
    modules = await run_archiver(tmp_path, redis_url, "--metrics-port", str(free_port()))
    assert {"tornado.httpserver", "chatroom.views.metrics"} <= modules
    assert [name for name in SERVING_ONLY if _loaded(modules, name)] == []


def test_the_controllers_package_offers_its_names_on_first_use():
    """``chatroom.controllers`` imports its classes lazily (so that the archiver need
    not import them all): each name it offers is there, from its own module."""
    for name in chatroom.controllers.__all__:
        value = getattr(chatroom.controllers, name)
        assert value.__name__ == name
        assert value.__module__.startswith("chatroom.controllers.")
    with pytest.raises(AttributeError):
        chatroom.controllers.NoSuchController  # noqa: B018
