"""Pinger: one timer pings every socket and closes those whose pong is late (issue 17)."""

from __future__ import annotations

import asyncio

from chatroom.views.pinger import Pinger


class FakeSocket:
    """Counts pings; answers them (through the pinger) when ``answers`` is set."""

    def __init__(self, pinger: Pinger, answers: bool = True) -> None:
        self.pinger = pinger
        self.answers = answers
        self.pings = 0
        self.timed_out = 0

    def send_ping(self) -> None:
        self.pings += 1
        if self.answers:
            asyncio.get_running_loop().call_soon(self.pinger.pong, self)

    def ping_timed_out(self) -> None:
        self.timed_out += 1
        self.pinger.discard(self)  # as the socket's on_close does


async def test_answering_sockets_are_pinged_and_kept_the_mute_one_is_closed() -> None:
    pinger = Pinger(0.05, 0.03)
    live = [FakeSocket(pinger) for _ in range(3)]
    mute = FakeSocket(pinger, answers=False)
    for socket in [*live, mute]:
        pinger.add(socket)
    await asyncio.sleep(0.2)
    assert all(s.pings >= 2 and s.timed_out == 0 for s in live), [s.pings for s in live]
    assert mute.pings == 1 and mute.timed_out == 1
    assert len(pinger) == 3
    pinger.stop()


async def test_timeout_equal_to_interval_still_closes() -> None:
    """Both timers fall due at once; whichever runs first, the late pong is caught."""
    pinger = Pinger(0.04, 0.04)
    mute = FakeSocket(pinger, answers=False)
    live = FakeSocket(pinger)
    pinger.add(mute)
    pinger.add(live)
    await asyncio.sleep(0.2)
    assert mute.timed_out == 1 and live.timed_out == 0
    assert live.pings >= 3
    pinger.stop()


async def test_the_timer_stops_without_sockets_and_restarts() -> None:
    pinger = Pinger(0.03, 0.02)
    socket = FakeSocket(pinger)
    pinger.add(socket)
    await asyncio.sleep(0.1)
    pinger.discard(socket)
    pings = socket.pings
    await asyncio.sleep(0.1)
    assert socket.pings == pings  # discarded: no more pings
    assert pinger._timer is None  # idle: nothing scheduled
    pinger.add(socket)
    await asyncio.sleep(0.1)
    assert socket.pings > pings
    pinger.stop()


async def test_a_socket_closed_between_ping_and_check_is_not_timed_out() -> None:
    pinger = Pinger(0.03, 0.03)
    mute = FakeSocket(pinger, answers=False)
    pinger.add(mute)
    await asyncio.sleep(0.04)  # pinged, not answered
    pinger.discard(mute)  # closed by the client meanwhile
    await asyncio.sleep(0.05)
    assert mute.timed_out == 0


async def test_interval_zero_pings_nothing() -> None:
    pinger = Pinger(0, 0)
    socket = FakeSocket(pinger)
    pinger.add(socket)
    await asyncio.sleep(0.05)
    assert len(pinger) == 0 and socket.pings == 0
