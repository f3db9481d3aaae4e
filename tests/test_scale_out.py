"""Several ``chatroom serve`` processes on one Redis and one PostgreSQL behave as one server."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.helpers import ChatClient, body
from tests.processes import host_with_own_redis, socket_on

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("close_opened_sockets")]


async def test_two_hosts_are_one_chat(two_hosts):
    a, b = two_hosts
    alice_token = await a.api.user("alice")
    bob_token = await b.api.user("bob")
    # A session made on one host is valid on the other.
    assert (await b.api.request("GET", "/api/rooms", token=alice_token)).code == 200
    alice = await socket_on(a, alice_token, "alice")
    bob = await socket_on(b, bob_token, "bob")
    senders = [(alice, "alice"), (bob, "bob")]
    for i in range(30):
        client, name = senders[i % 2]
        await client.send(f"{name} {i}", client_id=f"{name}-{i}")
    for client in (alice, bob):
        got = [await client.next("message") for _ in range(30)]
        assert [m["id"] for m in got] == list(range(1, 31))
        await client.nothing("message")
    history_a = body(
        await a.api.request("GET", "/api/rooms/lobby/messages?since=10", token=bob_token)
    )
    history_b = body(
        await b.api.request("GET", "/api/rooms/lobby/messages?since=10", token=bob_token)
    )
    assert history_a == history_b and len(history_a["messages"]) == 20
    await bob.send_frame({"type": "read", "room": "lobby", "id": 25})
    await bob.send_frame({"type": "ping"})
    await bob.next("pong")
    for host in (a, b):
        rooms = body(await host.api.request("GET", "/api/rooms", token=bob_token))["rooms"]
        assert next(r for r in rooms if r["name"] == "lobby")["unread"] == 5


async def test_presence_spans_hosts_and_survives_a_crash(two_hosts):
    a, b = two_hosts
    alice = await socket_on(a, await a.api.user("alice"), "alice")
    bob = await socket_on(b, await b.api.user("bob"), "bob")
    assert (await alice.next("presence", user="bob"))["state"] == "online"
    carol = await socket_on(a, await a.api.user("carol"), "carol")
    joined_online = (await carol.join("lobby"))["online"]
    assert sorted(joined_online) == ["alice", "bob", "carol"]
    b.process.send_signal(signal.SIGKILL)  # host b crashes: no goodbye from bob
    started = time.monotonic()
    offline = await alice.next("presence", timeout=20, user="bob")
    assert offline["state"] == "offline"
    assert time.monotonic() - started < 15
    del bob


async def test_rolling_restart_loses_and_doubles_nothing(two_hosts):
    a, b = two_hosts
    token = await a.api.user("alice")
    observer = await socket_on(b, await b.api.user("observer"), "observer")
    sender = await socket_on(a, token, "alice")
    acked: dict[str, int] = {}
    unacked: list[str] = []

    async def send_batch(client: ChatClient, start: int, count: int) -> None:
        for i in range(start, start + count):
            cid = f"m{i}"
            unacked.append(cid)
            await client.send(f"text {i}", client_id=cid)

    async def collect_acks(client: ChatClient, timeout: float = 5) -> None:
        while unacked:
            try:
                ack = await client.next("ack", timeout=timeout)
            except (ConnectionError, TimeoutError):
                return
            acked[ack["client_id"]] = ack["id"]
            unacked.remove(ack["client_id"])

    await send_batch(sender, 0, 40)
    restart = asyncio.get_running_loop().run_in_executor(None, a.stop, signal.SIGTERM)
    await collect_acks(sender, timeout=3)
    assert await restart == 0
    assert sender.ws.close_code in (1001, None)
    # The client reconnects to the other host and retries what was not acked.
    again = await socket_on(b, token, "alice", room=None)
    await again.join("lobby", since=max(acked.values(), default=0))
    retry = list(unacked)
    for cid in retry:
        await again.send(f"text {cid[1:]}", client_id=cid)
    await collect_acks(again)
    await send_batch(again, 40, 10)
    await collect_acks(again)
    assert not unacked and len(acked) == 50
    ids = sorted(acked.values())
    assert ids == list(range(1, 51)), "every message stored exactly once, ids dense"
    seen = [await observer.next("message") for _ in range(50)]
    assert [m["id"] for m in seen] == ids
    await observer.nothing("message")


async def test_redis_restart_under_a_running_server(tmp_path, serve_processes):
    async with host_with_own_redis(tmp_path, serve_processes) as (redis, host):
        alice = await socket_on(host, await host.api.user("alice"), "alice")
        bob = await socket_on(host, await host.api.user("bob"), "bob")
        await alice.send("before", client_id="b1")
        assert (await bob.next("message"))["text"] == "before"

        redis.stop()  # SIGTERM: Redis writes its AOF and exits
        await alice.send("during", client_id="d1")
        error = await alice.next("error", timeout=15)
        assert (error["code"], error["client_id"]) == ("unavailable", "d1")
        assert (await host.api.request("GET", "/healthz")).code == 503
        token = await host.api.login("alice")  # logins need only the database
        page = await host.api.request("GET", "/rooms/lobby", token=token)
        assert page.code == 200 and b"cannot store messages right now" in page.body

        redis.start()
        deadline = time.monotonic() + 20
        while (await host.api.request("GET", "/healthz")).code != 200:
            assert time.monotonic() < deadline, "chatroom did not recover from the Redis restart"
            await asyncio.sleep(0.2)
        await alice.send("after", client_id="a1")
        assert (await alice.next("ack", client_id="a1"))["id"] == 2
        assert (await bob.next("message", timeout=10))["text"] == "after"


async def test_send_rate_limit_spans_hosts(start_hosts):
    hosts = await start_hosts(2, env={"CHATROOM_SEND_BURST": "10"})
    token = await hosts[0].api.user("alice")
    sockets = [await socket_on(host, token, "alice") for host in hosts]
    for i in range(10):  # 20 sends at once, half through each host
        for n, client in enumerate(sockets):
            await client.send(f"{n}-{i}", client_id=f"{n}-{i}")
    acks = errors = 0
    for client in sockets:
        for _ in range(10):
            frame = await client.answer()
            if frame["type"] == "ack":
                acks += 1
            else:
                assert frame["code"] == "rate_limited"
                errors += 1
    # One bucket of 10 for alice in lobby, whichever host she sends through
    # (a token or two may refill while the 20 frames are in flight).
    assert 10 <= acks <= 12 and acks + errors == 20
