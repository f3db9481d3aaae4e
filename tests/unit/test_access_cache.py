"""Unit tests of ``RoomAccessCache``: the LRU of (user, room) access checks, its named
invalidation, its versioned invalidation, and lookups that straddle an invalidation."""

from __future__ import annotations

import pytest

from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.room_values import RoomRef


def ref(name: str, room_id: int = 1) -> RoomRef:
    return RoomRef(room_id, name, name.startswith("dm:"))


def cached(cache: RoomAccessCache, user_id: int, room: str) -> None:
    assert cache.put(user_id, room, ref(room), cache.ticket())


def test_a_miss_then_a_hit() -> None:
    cache = RoomAccessCache()
    assert cache.get(1, "lobby") is None
    cached(cache, 1, "lobby")
    assert cache.get(1, "lobby") == ref("lobby")
    assert cache.get(2, "lobby") is None  # per user
    assert (1, "lobby") in cache and len(cache) == 1
    assert list(cache) == [(1, "lobby")]


def test_the_least_recently_used_check_goes_first() -> None:
    cache = RoomAccessCache(size=3)
    for room in ("a", "b", "c"):
        cached(cache, 1, room)
    assert cache.get(1, "a") is not None  # "a" is now the most recent
    cached(cache, 1, "d")
    assert list(cache) == [(1, "c"), (1, "a"), (1, "d")]
    assert cache.get(1, "b") is None
    assert len(cache) == 3


def test_put_again_replaces_and_does_not_grow() -> None:
    cache = RoomAccessCache(size=2)
    cached(cache, 1, "a")
    assert cache.put(1, "a", ref("a", 7), cache.ticket())
    assert cache.get(1, "a") == ref("a", 7) and len(cache) == 1


def test_forget_one_pair() -> None:
    cache = RoomAccessCache()
    cached(cache, 1, "a")
    cached(cache, 1, "b")
    cache.forget(1, "a")
    cache.forget(1, "never-cached")  # no error
    assert list(cache) == [(1, "b")]


def test_forget_room_drops_every_user_of_that_room_only() -> None:
    cache = RoomAccessCache()
    for user_id, room in [(1, "doomed"), (2, "doomed"), (1, "lobby"), (3, "doomed-too")]:
        cached(cache, user_id, room)
    assert cache.forget_room("doomed") == 2
    assert sorted(cache) == [(1, "lobby"), (3, "doomed-too")]
    assert cache.forget_room("doomed") == 0


def test_forget_user_drops_every_room_of_that_user_only() -> None:
    cache = RoomAccessCache()
    for user_id, room in [(1, "a"), (1, "b"), (2, "a"), (11, "a")]:
        cached(cache, user_id, room)
    assert cache.forget_user(1) == 2
    assert sorted(cache) == [(2, "a"), (11, "a")]


def test_a_bumped_version_drops_the_checks_made_before_it() -> None:
    cache = RoomAccessCache()
    assert cache.version == 0
    cached(cache, 1, "a")
    cached(cache, 2, "b")
    assert cache.invalidate_before(5) == 2
    assert cache.version == 5 and len(cache) == 0
    cached(cache, 1, "a")  # checked again, under version 5
    assert cache.invalidate_before(5) == 0  # the same version again: nothing older
    assert cache.invalidate_before(3) == 0  # an old one (out of order): ignored
    assert cache.version == 5 and list(cache) == [(1, "a")]
    assert cache.invalidate_before(6) == 1
    assert cache.version == 6


@pytest.mark.parametrize(
    "invalidate",
    [
        lambda cache: cache.forget(1, "lobby"),
        lambda cache: cache.forget(9, "elsewhere"),  # any invalidation, to be safe
        lambda cache: cache.forget_room("lobby"),
        lambda cache: cache.forget_user(1),
        lambda cache: cache.invalidate_before(cache.version + 1),
    ],
)
def test_a_check_in_flight_across_an_invalidation_is_not_stored(invalidate) -> None:
    """A lookup that started before a room was deleted (or a user disabled, or a
    version bumped) may have seen the old state: it is used once, never cached."""
    cache = RoomAccessCache()
    ticket = cache.ticket()  # the lookup starts ...
    invalidate(cache)  # ... the change arrives while it is in SQL ...
    assert cache.put(1, "lobby", ref("lobby"), ticket) is False  # ... and it returns
    assert cache.get(1, "lobby") is None
    cached(cache, 1, "lobby")  # the next lookup is stored
    assert cache.get(1, "lobby") == ref("lobby")


def test_a_miss_does_not_touch_the_order() -> None:
    cache = RoomAccessCache(size=2)
    cached(cache, 1, "a")
    cached(cache, 1, "b")
    assert cache.get(1, "zzz") is None
    cached(cache, 1, "c")
    assert list(cache) == [(1, "b"), (1, "c")]
