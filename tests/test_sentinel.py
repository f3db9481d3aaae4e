"""Sentinel (SPEC §8): two chatroom processes on a master + replica watched by three
Sentinels, all real ``redis-server`` processes on loopback. The master is killed
under load: chat answers again within 30 s, each message acknowledged with
``--durability strict`` is there after the failover, exactly once, ids continue, and
both processes deliver again (they reconnected and resubscribed by themselves)."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
import tornado.netutil

from chatroom.config import ConfigError
from chatroom.models.archive import ArchivedMessage
from chatroom.server import ChatServer
from chatroom.storage import strict_durability_wait
from tests.conftest import RunningServer
from tests.redis_topologies import sentinel_topology

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sentinels(tmp_path):
    """A master, one replica, three Sentinels."""
    with sentinel_topology(tmp_path / "redis") as topology:
        yield topology


@pytest.fixture
def two_replicas(tmp_path):
    """A master, two replicas, three Sentinels: after a failover a replica is left, so
    ``--durability strict`` (a replica must have each message) acknowledges again."""
    with sentinel_topology(tmp_path / "redis", replicas=2) as topology:
        yield topology


async def start(config, url: str, secret: str, wait) -> RunningServer:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = ChatServer(config.replace(port=port, redis_url=url), url, secret, wait)
    await server.start(sockets)
    return RunningServer(server, port)


class Sender:
    """Sends one message at a time, as the browser does: each waits for its answer;
    ``unavailable`` is retried with the same client_id until it is acknowledged."""

    def __init__(self, client, tag: str) -> None:
        self.client, self.tag = client, tag
        self.acked: dict[str, int] = {}
        self.refused = 0
        #: (when the send went, when it was answered, "ack" | error code)
        self.answers: list[tuple[float, float, str]] = []
        self.running = True

    async def run(self) -> None:
        n = 0
        while self.running:
            cid = f"{self.tag}-{n}"
            while True:
                went = time.monotonic()
                await self.client.send(f"{self.tag} {n}", client_id=cid)
                answer = await self.client.answer(timeout=45)
                self.answers.append((went, time.monotonic(), answer.get("code", "ack")))
                if answer["type"] == "ack":
                    self.acked[cid] = answer["id"]
                    break
                assert answer["code"] == "unavailable", answer
                self.refused += 1
                await asyncio.sleep(0.2)
            n += 1
            await asyncio.sleep(0.02)


async def test_a_master_killed_under_load(two_replicas, database, capsys):
    sentinels = two_replicas
    url = sentinels.url
    wait = strict_durability_wait(url)  # Redis 7.0 with appendfsync always: WAIT 1
    assert wait is not None and wait.replicas == 1
    config = database.replace(
        send_burst=100_000, auth_burst=100_000, history_size=2000, durability="strict"
    )
    secret = secrets.token_urlsafe(32)
    one = await start(config, url, secret, wait)
    two = await start(config, url, secret, wait)
    stop_later: list[asyncio.Task] = []
    try:
        alice = await one.client("alice")
        bob = await two.client("bob")
        carol = await two.client("carol")  # only listens, on the other process
        senders = [Sender(alice, "a"), Sender(bob, "b")]
        tasks = [asyncio.create_task(s.run()) for s in senders]
        stop_later.extend(tasks)
        await asyncio.sleep(1.0)
        before = sum(len(s.acked) for s in senders)
        assert before > 5

        killed = time.monotonic()
        sentinels.master.kill()
        promoted = await asyncio.to_thread(sentinels.wait_for_failover)
        # Chat answers again: both senders get acks for sends after the failover.
        deadline = killed + 30
        while not all(
            any(w > killed + promoted and a == "ack" for w, _, a in x.answers) for x in senders
        ):
            assert time.monotonic() < deadline, "no ack within 30 s of the failover"
            await asyncio.sleep(0.05)
        # When each sender had an ack again, for a send that went after the kill.
        back = max(min(t for w, t, a in x.answers if w > killed and a == "ack") for x in senders)
        await asyncio.sleep(0.5)
        for s in senders:
            s.running = False
        await asyncio.gather(*tasks)

        # Every acknowledged message is kept, once, under its id: in the new master's
        # history, or in the archive (a new epoch leaves Redis' older ones to it).
        graph = one.server.controllers
        await graph.archive.archive_once()
        kept = {m.message_id: m.text for m in ArchivedMessage.select()}
        kept.update((m["id"], m["text"]) for m in (await graph.messages.history("lobby")).decoded())
        texts = sorted(kept.values())
        twice = {t for t in texts if texts.count(t) > 1}
        assert not twice, f"stored twice: {twice}"
        where = {text: i for i, text in kept.items()}
        acked = {f"{s.tag} {cid.split('-')[1]}": i for s in senders for cid, i in s.acked.items()}
        lost = {t: i for t, i in acked.items() if where.get(t) != i}
        assert not lost, f"acknowledged with strict, then lost or moved: {lost}"

        # Both processes deliver again: carol (process two) gets a message sent on one.
        await alice.send("after the failover", client_id="final")
        final = await alice.answer()
        assert final["type"] == "ack", final
        await carol.next("message", client_id="final", timeout=10)
        with capsys.disabled():
            print(
                f"\n[sentinel] promoted {promoted:.1f}s after the kill; both senders "
                f"acked again {back - killed:.1f}s after it; {len(acked)} acked, "
                f"{sum(s.refused for s in senders)} unavailable answers, none lost"
            )
    finally:
        for task in stop_later:
            task.cancel()
        await asyncio.gather(*stop_later, return_exceptions=True)
        for running in (one, two):
            for client in running.clients:
                client.close()
            await running.server.stop()


async def test_strict_acknowledges_only_what_a_replica_has(sentinels, database):
    """With the replica gone, a strict send is ``unavailable`` — and so is its retry,
    though the master has it (a retry must not ack what no replica confirmed). With
    the replica back, the retry is acknowledged with the original id."""
    url = sentinels.url
    config = database.replace(send_burst=100_000, auth_burst=100_000, durability="strict")
    one = await start(config, url, secrets.token_urlsafe(32), strict_durability_wait(url))
    try:
        alice = await one.client("alice")
        await alice.send("safe", client_id="c1")
        first = await alice.answer()
        assert first["type"] == "ack"
        await asyncio.to_thread(sentinels.replica.kill)
        for _ in range(2):
            await alice.send("unsafe", client_id="c2")
            answer = await alice.answer()
            assert answer.get("code") == "unavailable", answer
        await asyncio.to_thread(sentinels.replica.start)
        await asyncio.to_thread(sentinels.wait_for_replica, sentinels.replica)
        await alice.send("unsafe", client_id="c2")
        answer = await alice.answer()
        assert answer["type"] == "ack" and answer["id"] == first["id"] + 1, answer
    finally:
        for client in one.clients:
            client.close()
        await one.server.stop()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://127.0.0.1:26379", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:26379/", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:26379/m/x", "must be a number"),
        ("redis+sentinel://127.0.0.1:26379/m/0/extra", "needs the master's name"),
        ("redis+sentinel://127.0.0.1:99999/m", "out of range"),
        ("redis+sentinel://h o s t:1/m", "malformed host"),
        ("redis+sentinel://,/m", "malformed host"),
        ("redis+sentinel://127.0.0.1/m%20x", "malformed Sentinel master"),
        ("redis+sentinel://127.0.0.1/m?frobnicate=1", "unknown parameter"),
        ("redis+cluster://127.0.0.1:7000/0", "takes no /db"),
        ("redis+cluster://127.0.0.1:7000/1/2", "takes no /db"),
        ("redis+cluster://" + "h" * 300 + "x:1@:", "malformed host"),
    ],
)
def test_malformed_urls_stop_at_start(tmp_path, url, message):
    from chatroom.config import Config

    with pytest.raises(ConfigError, match=message):
        Config(data_dir=tmp_path, redis_url=url)


def test_urls_parse_with_passwords_ipv6_and_defaults():
    from chatroom.redis_urls import parse_redis_url

    target = parse_redis_url(
        "redis+sentinel://u:p%40ss/w@[::1]:26380,h2/chat/3?sentinel_password=s"
    )
    assert target.kind == "sentinel" and target.master == "chat" and target.db == 3
    assert target.nodes == (("::1", 26380), ("h2", 26379))
    assert (target.username, target.password, target.sentinel_password) == ("u", "p@ss/w", "s")
    cluster = parse_redis_url("redis+cluster://a:7000,b")
    assert cluster.nodes == (("a", 7000), ("b", 6379)) and cluster.replicated
    assert not parse_redis_url("redis://localhost:6379/0").replicated
