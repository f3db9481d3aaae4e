"""A tiny run of the ``cost`` scenario against the relay (``--cost-server relay``,
benchmarks/relay_server.py): two forked workers behind one socket, members spread
over both and then all on one; fails on a wrong placement, loss, duplicates or
disorder, or a worker left running after the stop, never on timing."""

from __future__ import annotations

import asyncio

import pytest
from benchmarks.servers import start_relay

from tests.redis_topologies import require_redis_server
from tests.test_benchmark_cost_smoke import small_run

psutil = pytest.importorskip("psutil")


@pytest.mark.timeout(90)
def test_relay_cost_smoke_places_members_and_loses_nothing():
    require_redis_server()
    (spread, one), lines = small_run(seconds=1.5, idle_seconds=0.2, servers=("relay",))
    assert spread["members_per_worker"] == [4, 4], lines
    assert one["members_per_worker"] == [8, 0], lines
    for result in (spread, one):
        assert result["server"] == result["params"]["server"] == "relay"
        assert result["params"]["chatroom_args"] == []
        assert result["bad"] == 0 and result["delivered"] >= result["acked"] > 0, lines
        assert len(result["server_cpu_s_per_process"]) == 3  # the parent and two workers
        assert result["redis_us_per_message"]["masters"] > 0


@pytest.mark.timeout(60)
def test_sigterm_to_the_relay_stops_every_worker(tmp_path, redis_url):
    async def start_and_stop() -> tuple[list[int], dict]:
        server = await start_relay(tmp_path, 2, None, ["--redis-url", redis_url])
        workers = [p.pid for p in psutil.Process(server.pid).children()]
        return workers, server.stop(grace=10)

    workers, stopped = asyncio.run(start_and_stop())
    assert len(workers) == 2
    assert stopped["killed"] is False and stopped["exit_code"] == 0
    assert not [pid for pid in workers if psutil.pid_exists(pid)]
