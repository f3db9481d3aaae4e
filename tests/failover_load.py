"""Chat under load while a replicated Redis fails over (SPEC §8), for the Sentinel and
Cluster tests: chatroom processes started on a topology's URL (tests/redis_topologies.py),
senders that send one message at a time as the browser does, and the strict-send
check that every acknowledged message is kept once, under its id."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import tornado.netutil

from chatroom.models.archive import ArchivedMessage
from chatroom.server import ChatServer
from tests.conftest import RunningServer


async def serve(config, url: str, secret: str, wait=None) -> RunningServer:
    """A chatroom process on the Redis at ``url`` (``wait``: the strict durability wait)."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = ChatServer(config.replace(port=port, redis_url=url), url, secret, wait)
    await server.start(sockets)
    return RunningServer(server, port)


async def stop_hosts(hosts: list[RunningServer]) -> None:
    """Close each host's test clients, then stop the host."""
    for host in hosts:
        for client in host.clients:
            client.close()
        await host.server.stop()


@contextlib.asynccontextmanager
async def strict_hosts(
    database, url: str, wait
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two chatroom processes on ``url`` with ``--durability strict`` (``wait``: the
    durability wait) and limits out of the tests' way; stopped on exit."""
    config = database.replace(
        send_burst=100_000, auth_burst=100_000, history_size=2000, durability="strict"
    )
    secret = secrets.token_urlsafe(32)
    hosts = [await serve(config, url, secret, wait) for _ in range(2)]
    try:
        yield hosts[0], hosts[1]
    finally:
        await stop_hosts(hosts)


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


@contextlib.asynccontextmanager
async def sending(*clients) -> AsyncIterator[list[Sender]]:
    """A ``Sender`` per client (tags a, b, ...) sending to lobby while the block runs;
    at its end each finishes the send in hand (so its answer is in), on an error they
    are cancelled."""
    senders = [Sender(client, tag) for client, tag in zip(clients, "abcdefgh", strict=False)]
    tasks = [asyncio.create_task(s.run()) for s in senders]
    try:
        yield senders
        for s in senders:
            s.running = False
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def acked_texts(senders: list[Sender]) -> dict[str, int]:
    """Every acknowledged message's text, with the id its ack gave."""
    return {f"{s.tag} {cid.split('-')[1]}": i for s in senders for cid, i in s.acked.items()}


@dataclass(frozen=True)
class FailoverRun:
    """What ``sends_through_failover`` saw."""

    promoted: float  #: seconds from the kill to the promotion
    back: float  #: seconds from the kill until every sender had an ack again
    acked: int
    refused: int  #: ``unavailable`` answers

    def summary(self) -> str:
        return (
            f"promoted {self.promoted:.1f}s after the kill; both senders acked again "
            f"{self.back:.1f}s after it; {self.acked} acked, {self.refused} unavailable "
            "answers, none lost"
        )


async def sends_through_failover(
    clients: list, fail: Callable[[], Awaitable[float]], graph, within: float = 30.0
) -> FailoverRun:
    """``clients`` (on two processes) send under ``--durability strict``; after a second
    ``fail()`` kills the room's master and returns how long the promotion took. Chat
    answers again within ``within`` s of the kill (every sender has an ack for a send
    after the promotion), and every acknowledged message is kept once, under its id:
    in the new master's history, or in the archive (a new epoch leaves Redis' older
    ones to it) — ``graph`` is one process's ``controllers``."""
    async with sending(*clients) as senders:
        await asyncio.sleep(1.0)
        assert sum(len(s.acked) for s in senders) > 5
        killed = time.monotonic()
        promoted = await fail()
        deadline = killed + within
        while not all(
            any(w > killed + promoted and a == "ack" for w, _, a in s.answers) for s in senders
        ):
            assert time.monotonic() < deadline, f"no ack within {within:.0f} s of the kill"
            await asyncio.sleep(0.05)
        # When each sender had an ack again, for a send that went after the kill.
        back = max(min(t for w, t, a in s.answers if w > killed and a == "ack") for s in senders)
        await asyncio.sleep(0.5)

    await graph.archive.archive_once()
    kept = {m.message_id: m.text for m in ArchivedMessage.select()}
    kept.update((m["id"], m["text"]) for m in (await graph.messages.history("lobby")).decoded())
    texts = sorted(kept.values())
    twice = {t for t in texts if texts.count(t) > 1}
    assert not twice, f"stored twice: {twice}"
    where = {text: i for i, text in kept.items()}
    acked = acked_texts(senders)
    lost = {t: i for t, i in acked.items() if where.get(t) != i}
    assert not lost, f"acknowledged with strict, then lost or moved: {lost}"
    refused = sum(s.refused for s in senders)
    return FailoverRun(promoted, back - killed, len(acked), refused)
