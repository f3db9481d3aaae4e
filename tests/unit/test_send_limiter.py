"""Unit tests of ``SendLimiter`` (strikes, the cross-room bucket, the typing throttle,
join buckets) and of ``TokenBucket.retry_after``, the wait a client is shown."""

from __future__ import annotations

import math
import time

import pytest

from chatroom.controllers.errors import RateLimitedError
from chatroom.controllers.limits import (
    CROSS_ROOM_FACTOR,
    MAX_IGNORED_RETRIES,
    TYPING_INTERVAL_SECONDS,
    ConnectionCaps,
    SendLimiter,
    SendLimits,
    TokenBucket,
    whole_milliseconds,
)
from chatroom.metrics import Metrics

#: (capacity, rate per second), as in test_token_bucket.py, with fast and odd rates.
SHAPES = [(10, 2.0), (20, 4.0), (1, 1.0), (2, 1 / 3), (2, 0.3), (4, 49.0), (1, 50.0), (3, 7.0)]
STARTS = [0.0, 12_345.678, 1e9 + 0.3, 86_400 * 365.25 * 10]
#: Gaps between sends: with these, 0.2's bucket refused clients that had waited exactly
#: the wait they were shown, for 6 of these shapes and starts.
GAPS = [0, 0.001, 0.0005, 0.013]


def limiter(burst: int = 3, per_second: float = 1.0, joins: int = 60) -> SendLimiter:
    return SendLimiter(
        SendLimits(burst=burst, per_second=per_second),
        ConnectionCaps(joins_per_minute=joins),
        Metrics(),
    )


@pytest.mark.parametrize(
    ("wait", "shown"),
    [
        (0.0, 0.0),
        (0.5, 0.5),
        (0.30000000000000004, 0.3),  # float noise on a whole millisecond: not 0.301
        (0.29999999999999993, 0.3),
        (0.0001, 0.001),
        (0.0010001, 0.002),
        (2.9979999999999993, 2.998),
        (3.3333333333333335, 3.334),
    ],
)
def test_whole_milliseconds_rounds_up(wait: float, shown: float) -> None:
    assert whole_milliseconds(wait) == shown


@pytest.mark.parametrize(("capacity", "rate"), SHAPES)
@pytest.mark.parametrize("start", STARTS)
def test_waiting_exactly_the_shown_retry_after_finds_a_token(
    capacity: int, rate: float, start: float
) -> None:
    """The float-rounding refusal: a client that waited exactly the wait it was shown
    (whole milliseconds) could be refused again by ~1e-15 s. Never now."""
    b, now = TokenBucket(capacity, rate, updated=start), start
    for step in range(200):
        wait = b.retry_after(now)
        if wait:
            assert wait == round(wait, 3) and wait >= 0.001
            now += wait
            assert b.retry_after(now) == 0.0, f"refused after waiting {wait}s (step {step})"
        now += GAPS[step % len(GAPS)]


@pytest.mark.parametrize(("capacity", "rate"), SHAPES)
def test_retry_after_never_shows_less_than_the_wait(capacity: int, rate: float) -> None:
    b = TokenBucket(capacity, rate, updated=0.0)
    for _ in range(capacity):
        assert b.retry_after(0.0) == 0.0
    shown = b.retry_after(0.0)
    assert shown >= 1 / rate - 1e-9 and shown == math.ceil(1000 / rate - 1e-6) / 1000


def test_the_cross_room_bucket_holds_twice_the_burst_and_refunds() -> None:
    limits = limiter(burst=3, per_second=0.001)
    for _ in range(CROSS_ROOM_FACTOR * 3):
        limits.take_send("alice")
    with pytest.raises(RateLimitedError) as refused:
        limits.take_send("alice")
    assert refused.value.retry_after == 1 / (CROSS_ROOM_FACTOR * 0.001)  # twice the rate too
    limits.take_send("bob")  # per user
    limits.refund_send("alice")
    limits.take_send("alice")  # the refunded token
    limits.refund_send("nobody")  # no bucket: nothing to give back


def test_strikes_close_after_max_ignored_retries_in_a_row() -> None:
    limits = limiter()
    socket = limits.for_socket()
    assert limits.strike(socket) is False  # no retry_after pending
    limits.refused(socket, 60.0)
    strikes = [limits.strike(socket) for _ in range(MAX_IGNORED_RETRIES)]
    assert strikes == [False] * (MAX_IGNORED_RETRIES - 1) + [True]
    assert limits.strike(socket) is True  # and every one after it


def test_a_send_after_the_retry_after_clears_the_strikes() -> None:
    limits = limiter()
    socket = limits.for_socket()
    limits.refused(socket, 60.0)
    for _ in range(MAX_IGNORED_RETRIES - 1):
        assert limits.strike(socket) is False
    socket.retry_at = time.monotonic() - 0.001  # the client waited it out
    assert limits.strike(socket) is False and socket.ignored_retries == 0
    limits.refused(socket, 60.0)
    assert limits.strike(socket) is False and socket.ignored_retries == 1


def test_each_socket_has_its_own_join_bucket() -> None:
    limits = limiter(joins=3)
    one, two = limits.for_socket(), limits.for_socket()
    for _ in range(3):
        limits.take_join(one)
    with pytest.raises(RateLimitedError) as refused:
        limits.take_join(one)
    assert refused.value.retry_after == 20.0  # 3 per minute: one every 20 s
    limits.take_join(two)


def test_typing_is_due_once_per_interval_per_user_and_room() -> None:
    limits = limiter()
    assert limits.typing_due("alice", "lobby") is True
    assert limits.typing_due("alice", "lobby") is False
    assert limits.typing_due("alice", "other") is True
    assert limits.typing_due("bob", "lobby") is True
    limits.forget_idle(time.monotonic() + TYPING_INTERVAL_SECONDS + 1)
    assert limits.typing_due("alice", "lobby") is True  # forgotten: due again


def test_forget_idle_drops_only_full_buckets() -> None:
    limits = limiter(burst=1, per_second=0.001)
    limits.take_send("alice")
    limits.take_send("bob")
    limits.take_send("bob")
    limits.forget_idle()
    with pytest.raises(RateLimitedError):  # kept: bob's bucket is not full
        limits.take_send("bob")
    limits.forget_idle(time.monotonic() + 10_000)
    limits.take_send("bob")  # forgotten, then a fresh bucket
