"""After a Redis restart, live delivery resumes with the acks: the event subscription
reconnects on the sends' own retry schedule, not a slower one."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from chatroom.controllers.redis_outage import REDIS_RETRY_MAX_SECONDS
from chatroom.embedded_redis import EmbeddedRedis
from tests.conftest import start_server

pytestmark = pytest.mark.timeout(60)


async def test_delivery_resumes_with_the_acks_after_a_redis_restart(database, tmp_path, caplog):
    caplog.set_level("DEBUG", logger="chatroom.controllers.chat")
    (tmp_path / "redis").mkdir()
    redis = EmbeddedRedis(tmp_path / "redis")
    redis.start()
    running = await start_server(database.replace(send_burst=100_000), redis.url)
    loop = asyncio.get_running_loop()
    try:
        alice = await running.client("alice")
        bob = await running.client("bob")
        await loop.run_in_executor(None, redis.stop)
        # Long enough for a doubling backoff to pass a second between attempts.
        await asyncio.sleep(3.5)
        await loop.run_in_executor(None, redis.start)
        # Send until one is acknowledged (the first may meet Redis still starting).
        for attempt in range(50):
            await alice.send("back", client_id=f"after-{attempt}")
            answer = await alice.next_of("ack", "error")
            if answer["type"] == "ack":
                break
            await asyncio.sleep(0.1)
        acked_at = time.monotonic()
        message = await bob.next("message", timeout=10, client_id=answer["client_id"])
        lag = time.monotonic() - acked_at
    finally:
        for client in running.clients:
            client.close()
        await running.server.stop()
        redis.stop()
    # The mechanism: the subscription never waited longer between attempts than a send does.
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+)s", caplog.text)]
    assert delays, caplog.text
    assert max(delays) <= REDIS_RETRY_MAX_SECONDS, delays
    # The effect, with a bound generous enough for a loaded machine.
    assert message["text"] == "back"
    assert lag < 1.5, f"delivered {lag:.2f}s after the ack"
