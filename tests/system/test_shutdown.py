"""SIGTERM ends ``chatroom serve`` cleanly even when a client stalls or Redis is down:
exit 0, every task of the server finished or cancelled in order, in-flight sends
answered ``unavailable``, and nothing logged at ERROR."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest

from tests.processes import ServeProcess, host_with_own_redis, socket_on
from tests.rawws import RawSocket

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("close_opened_sockets")]

#: What a clean shutdown never logs.
UNCLEAN = ("Traceback", " ERROR ", "Task was destroyed", "no running event loop", "Uncaught")


async def sigterm(host: ServeProcess) -> tuple[int, float]:
    """SIGTERM the server; its exit code and how long it took to exit."""
    started = time.monotonic()
    code = await asyncio.get_running_loop().run_in_executor(None, host.stop)
    return code, time.monotonic() - started


def assert_clean_exit(host: ServeProcess, code: int, took: float) -> None:
    assert code == 0, host.read_output()
    assert took < 10, took  # SPEC: a clean exit within 10 s
    log = host.read_output()
    found = [marker for marker in UNCLEAN if marker in log]
    assert not found, f"{found} in the log:\n{log[-4000:]}"


async def test_sigterm_with_a_stalled_client_exits_cleanly(tmp_path, serve_processes):
    host = serve_processes(tmp_path / "host")
    await host.ready()
    alice = await socket_on(host, await host.api.user("alice"), "alice")
    # It joins, then neither reads nor answers the server's close (1001).
    stalled = await RawSocket.open(host.port, await host.api.user("stalled"), rcvbuf=4096)
    await stalled.join()
    await alice.next("presence", user="stalled", state="online")
    code, took = await sigterm(host)
    stalled.close()
    assert_clean_exit(host, code, took)


async def test_sigterm_while_redis_is_down_answers_sends_unavailable(tmp_path, serve_processes):
    async with host_with_own_redis(tmp_path, serve_processes) as (redis, host):
        # Tornado reads a socket's next frame only once the last one is handled, so
        # each socket has one send in flight: two sockets, two sends.
        clients = [
            await socket_on(host, await host.api.user(name), name) for name in ("alice", "bob")
        ]
        for client in clients:  # its join is done, to the presence it announces
            await client.next("presence", user=client.name, state="online")
        os.kill(redis.pid, signal.SIGKILL)
        await asyncio.get_running_loop().run_in_executor(None, redis.stop)  # reaps it
        for client in clients:
            await client.send("into the void", client_id=f"from-{client.name}")
        await asyncio.sleep(0.5)  # inside the server's 3 s of retries
        code, took = await sigterm(host)
        answers = {}
        for client in clients:
            while (raw := await client.ws.read_message()) is not None:
                frame = orjson.loads(raw)
                if frame["type"] in ("ack", "error"):
                    answers[frame["client_id"]] = frame
            assert client.ws.close_code == 1001
    assert {cid: (f["type"], f.get("code"), f["room"]) for cid, f in answers.items()} == {
        "from-alice": ("error", "unavailable", "lobby"),
        "from-bob": ("error", "unavailable", "lobby"),
    }
    assert_clean_exit(host, code, took)


async def test_sigterm_while_redis_hangs_answers_frames_unavailable(tmp_path, serve_processes):
    # A frozen Redis (SIGSTOP): a send and a join wait inside their Redis calls, not
    # between retries; shutdown cancels them after a bound and still answers them.
    async with host_with_own_redis(tmp_path, serve_processes) as (redis, host):
        alice = await socket_on(host, await host.api.user("alice"), "alice")
        await alice.next("presence", user="alice", state="online")  # the join is done
        bob = await socket_on(host, await host.api.user("bob"), "bob", room=None)
        os.kill(redis.pid, signal.SIGSTOP)
        await alice.send("into the freezer", client_id="frozen")
        await bob.send_frame({"type": "join", "room": "lobby"})
        await asyncio.sleep(0.5)
        code, took = await sigterm(host)
        answers = [await client.next_of("ack", "joined", "error") for client in (alice, bob)]
        for client in (alice, bob):
            assert (await client.ws.read_message()) is None
            assert client.ws.close_code == 1001
    assert [(a["type"], a.get("code"), a["room"], a.get("client_id")) for a in answers] == [
        ("error", "unavailable", "lobby", "frozen"),
        ("error", "unavailable", "lobby", None),
    ]
    assert_clean_exit(host, code, took)
