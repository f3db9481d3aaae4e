"""Sign-up by invite and blocking across two ``chatroom serve`` hosts on one Redis and
one PostgreSQL (SPEC §6): a code's uses are shared by every host, and a block made
through one host closes the direct conversation for a socket on the other at once."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from chatroom.cli import main
from tests.helpers import PASSWORD, body
from tests.processes import socket_on

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_opened_sockets")]


def make_invite(database_url: str, data_dir, uses: int) -> str:
    args = ["invites", "create", "--uses", str(uses), "--json"]
    args += ["--database-url", database_url, "--data-dir", str(data_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["code"]


async def test_invites_and_blocks_span_hosts(start_hosts, postgresql_url, tmp_path):
    a, b = await start_hosts(2, env={"CHATROOM_REGISTRATION": "invite"})
    code = await asyncio.to_thread(make_invite, postgresql_url, tmp_path / "cli", 2)

    def register(host, name):
        fields = {"username": name, "password": PASSWORD, "invite": code}
        return host.api.request("POST", "/api/register", fields)

    answers = await asyncio.gather(
        register(a, "alice"), register(b, "bob"), register(a, "carol"), register(b, "dave")
    )
    assert sorted(r.code for r in answers) == [201, 201, 403, 403]
    first, second = sorted(body(r)["user"]["name"] for r in answers if r.code == 201)
    dm = f"dm:{first}:{second}"

    blocker = await a.api.login(first)
    other = await socket_on(b, await b.api.login(second), second, room=dm)  # on host b
    await other.send("hi", room=dm, client_id="c1")
    assert (await other.answer())["type"] == "ack"

    blocked = await a.api.request("POST", "/api/blocks", {"user": second}, blocker)
    assert blocked.code == 201  # through host a
    # Host b hears of the block by a control event through Redis: it applies there
    # within moments of host a's answer, not necessarily before it.
    for attempt in range(50):
        await other.send("still there?", room=dm, client_id=f"c{attempt + 2}")
        refused = await other.answer()
        if refused["type"] != "ack":
            break
        await asyncio.sleep(0.1)
    assert (refused["type"], refused.get("code")) == ("error", "forbidden")
    history = await b.api.request("GET", f"/api/rooms/{dm}/messages", token=blocker)
    assert history.code == 403
