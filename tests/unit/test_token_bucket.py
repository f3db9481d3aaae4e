"""Unit tests of ``TokenBucket`` (the per-user, cross-room send limit), with the clock
driven explicitly: every call gets its ``now``, nothing sleeps."""

from __future__ import annotations

import pytest

from chatroom.controllers.limits import TokenBucket

#: (capacity, rate per second): SPEC's 10 + 2/s, the cross-room double, and odd ones.
SHAPES = [(10, 2.0), (20, 4.0), (1, 1.0), (3, 20.0), (2, 0.3), (5, 1 / 3), (4, 49.0), (1, 0.01)]
#: Where the clock starts: zero, a typical monotonic reading, a long-running host.
STARTS = [0.0, 12_345.678, 1e9 + 0.3]


def bucket(capacity: float, rate: float, at: float = 0.0) -> TokenBucket:
    return TokenBucket(capacity, rate, updated=at)


@pytest.mark.parametrize(("capacity", "rate"), SHAPES)
@pytest.mark.parametrize("start", STARTS)
def test_a_full_bucket_allows_a_burst_of_capacity(capacity: int, rate: float, start: float):
    b = bucket(capacity, rate, start)
    assert [b.take(start) for _ in range(capacity)] == [0.0] * capacity
    assert b.take(start) == pytest.approx(1 / rate)


@pytest.mark.parametrize(
    ("takes_at", "waits"),
    [
        # capacity 2, 2 tokens per second; (times of take) -> (what each answered)
        ([0, 0, 0], [0, 0, 0.5]),
        ([0, 0, 0.25], [0, 0, 0.25]),
        ([0, 0, 0.5], [0, 0, 0]),
        ([0, 0, 0.5, 0.5], [0, 0, 0, 0.5]),
        ([0, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0.5]),  # refused takes cost nothing
        ([0, 0, 0.1, 0.2, 0.3, 0.4], [0, 0, 0.4, 0.3, 0.2, 0.1]),
        ([0, 10, 10, 10], [0, 0, 0, 0.5]),  # the refill stops at capacity
        ([0, 0, 1000, 1000, 1000], [0, 0, 0, 0, 0.5]),
        ([5, 5, 5.75, 5.75], [0, 0, 0, 0.25]),
    ],
)
def test_take(takes_at: list[float], waits: list[float]) -> None:
    b = bucket(2, 2.0)
    assert [b.take(t) for t in takes_at] == pytest.approx(waits)


@pytest.mark.parametrize(("capacity", "rate"), SHAPES)
@pytest.mark.parametrize("start", STARTS)
def test_waiting_the_answered_time_finds_a_token(capacity: int, rate: float, start: float):
    """A client that waits what it was told gets its send through (SPEC §3: retry_after).

    Within float precision: the controller rounds the wait up to whole milliseconds
    before showing it, far more than the microsecond allowed here."""
    b, now = bucket(capacity, rate, start), start
    granted = 0
    for step in range(60):
        wait = b.take(now)
        if wait:
            assert 0 < wait <= 1 / rate * (1 + 1e-9)
            now += wait + 1e-6
            assert b.take(now) == 0.0, f"refused after waiting {wait}s (step {step})"
        granted += 1
        now += (step % 4) * 0.01 / rate  # some traffic arrives a little later
    assert granted == 60
    # Never more than the burst plus what the elapsed time paid for.
    assert granted <= capacity + (now - start) * rate + 1e-6


@pytest.mark.parametrize(("capacity", "rate"), SHAPES)
@pytest.mark.parametrize("start", STARTS)
def test_the_long_run_rate_is_the_refill_rate(capacity: int, rate: float, start: float):
    """A client that sends again as soon as it is told it may gets the burst, then ``rate``
    per second: no drift from rounding over a few hundred refills."""
    b, now, granted = bucket(capacity, rate, start), start, 0
    end = start + 300 / rate
    while now < end:
        wait = b.take(now)
        if wait:
            now += wait + 1e-6
        else:
            granted += 1
    assert capacity + 300 - 1 <= granted <= capacity + 300 + 1


def test_refund_gives_one_token_back_and_never_more_than_capacity() -> None:
    b = bucket(2, 1.0)
    assert b.take(0) == 0 and b.take(0) == 0 and b.take(0) == 1.0
    b.refund()
    assert b.take(0) == 0.0
    assert b.take(0) == 1.0
    full = bucket(2, 1.0)
    full.refund()
    full.refund()
    assert [full.take(0) for _ in range(3)] == [0, 0, 1.0]


@pytest.mark.parametrize(
    ("takes_at", "checked_at", "full"),
    [
        ([], 0, True),
        ([0], 0, False),
        ([0], 0.49, False),
        ([0], 0.5, True),  # 2 per second: one token back after half a second
        ([0, 0], 0.5, False),
        ([0, 0], 1.0, True),
        ([0, 0, 0, 0], 1.0, True),  # refused takes took nothing
        ([0], 1e9, True),
    ],
)
def test_is_full(takes_at: list[float], checked_at: float, full: bool) -> None:
    """What lets the controller forget an idle user's bucket (a full one equals a new one)."""
    b = bucket(2, 2.0)
    for t in takes_at:
        b.take(t)
    assert b.is_full(checked_at) is full


def test_is_full_does_not_change_the_bucket() -> None:
    b = bucket(2, 2.0)
    b.take(0)
    b.take(0)
    assert b.is_full(100) is True
    assert (b.tokens, b.updated) == (0.0, 0)
    assert b.take(0) == 0.5


def test_a_bucket_may_start_part_empty() -> None:
    b = TokenBucket(10, 2.0, tokens=1.0, updated=0.0)
    assert [b.take(0) for _ in range(2)] == [0.0, 0.5]
