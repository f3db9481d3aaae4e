"""The open-files limit (issue 17): raised at start, a warning when too low for
--max-connections; and sockets past --max-connections refused before the upgrade."""

from __future__ import annotations

import asyncio
import logging
import resource

import pytest
from tornado.httpclient import HTTPClientError

from chatroom.fdlimit import (
    RESERVED_FDS,
    check_open_files,
    needed_open_files,
    raise_open_files_limit,
)
from tests.helpers import body, connect


@pytest.fixture
def low_soft_limit():
    """The soft limit lowered for the test (always allowed), put back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_the_hard_one(low_soft_limit) -> None:
    hard = low_soft_limit
    limits = raise_open_files_limit()
    assert limits is not None
    if hard != resource.RLIM_INFINITY:
        assert limits == (hard, hard)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 512


def test_a_limit_too_low_for_max_connections_is_said(low_soft_limit, caplog) -> None:
    hard = low_soft_limit
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no finite hard limit here")
    with caplog.at_level(logging.DEBUG, logger="chatroom"):
        assert check_open_files(hard) == hard  # raised, but hard + 256 do not fit
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert f"open-files limit is {hard}" in text and "--max-connections" in text
    assert str(needed_open_files(hard)) in text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="chatroom"):
        check_open_files(max(1, hard - RESERVED_FDS))  # fits exactly
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


async def test_sockets_past_max_connections_are_refused_with_503(app_factory) -> None:
    app = await app_factory(max_connections=2)
    first = await app.client("alice")
    await app.client("bob")
    token = await app.api.user("carol")
    refused = await app.api.request(
        "GET",
        "/ws",
        token=token,
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
    assert refused.code == 503
    assert body(refused)["error"]["code"] == "unavailable"
    first.ws.close()
    for _ in range(100):  # until the close has reached the server
        try:
            ws = await connect(app.ws_url, token)
        except HTTPClientError as exc:
            assert exc.code == 503
            await asyncio.sleep(0.05)
            continue
        assert '"hello"' in await ws.read_message()
        ws.close()
        return
    pytest.fail("a socket freed by a close was never given out again")
