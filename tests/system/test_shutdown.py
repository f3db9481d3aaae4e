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

from chatroom.embedded_redis import EmbeddedRedis
from tests.processes import ServeProcess, socket_on
from tests.rawws import RawSocket

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("close_opened_sockets")]

#: What a clean shutdown never logs.
UNCLEAN = ("Traceback", " ERROR ", "Task was destroyed", "no running event loop", "Uncaught")


async def sigterm(host: ServeProcess) -> tuple[int, float]:
    """SIGTERM the server; its exit code and how long it took to exit."""
    started = time.monotonic()
    code = await asyncio.get_running_loop().run_in_executor(None, host.stop)
    return code, time.monotonic() - started


def assert_clean(log: str) -> None:
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
    assert code == 0, host.read_output()
    assert took < 10, took  # SPEC: a clean exit within 10 s
    assert_clean(host.read_output())


async def test_sigterm_while_redis_is_down_answers_sends_unavailable(tmp_path, serve_processes):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = EmbeddedRedis(redis_dir)
    redis.start()
    try:
        host = serve_processes(tmp_path / "host", "--redis-url", redis.url)
        await host.ready()
        # Tornado reads a socket's next frame only once the last one is handled, so
        # each socket has one send in flight: two sockets, two sends.
        clients = [
            await socket_on(host, await host.api.user(name), name) for name in ("alice", "bob")
        ]
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
    finally:
        redis.stop()
    assert {cid: (f["type"], f.get("code"), f["room"]) for cid, f in answers.items()} == {
        "from-alice": ("error", "unavailable", "lobby"),
        "from-bob": ("error", "unavailable", "lobby"),
    }
    assert code == 0, host.read_output()
    assert took < 10, took
    assert_clean(host.read_output())


async def test_sigterm_while_redis_hangs_answers_sends_unavailable(tmp_path, serve_processes):
    # A frozen Redis (SIGSTOP): a send waits inside its Redis call, not between
    # retries; shutdown cancels it after a bound and still answers it.
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = EmbeddedRedis(redis_dir)
    redis.start()
    try:
        host = serve_processes(tmp_path / "host", "--redis-url", redis.url)
        await host.ready()
        alice = await socket_on(host, await host.api.user("alice"), "alice")
        os.kill(redis.pid, signal.SIGSTOP)
        await alice.send("into the freezer", client_id="frozen")
        await asyncio.sleep(0.5)
        code, took = await sigterm(host)
        answer = await alice.next_of("ack", "error")
        assert (await alice.ws.read_message()) is None
        assert alice.ws.close_code == 1001
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        redis.stop()
    assert (answer["type"], answer.get("code"), answer["client_id"]) == (
        "error",
        "unavailable",
        "frozen",
    )
    assert code == 0, host.read_output()
    assert took < 10, took
    assert_clean(host.read_output())
