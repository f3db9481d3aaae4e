"""``RoomAccessCache.advance`` (issue 13): a removal applied by name moves the access
version on without dropping other checks, unless a version was skipped (a missed event)."""

from __future__ import annotations

from chatroom.controllers.access_cache import RoomAccessCache
from chatroom.controllers.room_values import RoomRef


def cache_with(*rooms: str) -> RoomAccessCache:
    cache = RoomAccessCache()
    for n, room in enumerate(rooms, 1):
        assert cache.put(n, room, RoomRef(n, room, False), cache.ticket())
    return cache


def test_the_next_version_drops_nothing_more() -> None:
    cache = cache_with("a", "b")
    cache.forget(1, "a")  # the removal itself, by name
    assert cache.advance(1) == 0
    assert list(cache) == [(2, "b")] and cache.version == 1
    assert cache.advance(1) == 0 and cache.advance(0) == 0  # repeated or old: nothing
    assert cache.version == 1


def test_a_skipped_version_drops_every_older_check() -> None:
    cache = cache_with("a", "b")
    assert cache.advance(3) == 2  # 2 was missed: whatever it removed is unknown here
    assert list(cache) == [] and cache.version == 3
    assert cache.put(5, "c", RoomRef(5, "c", False), cache.ticket())
    assert cache.advance(4) == 0 and list(cache) == [(5, "c")]


def test_a_lookup_in_flight_during_a_removal_is_not_stored() -> None:
    cache = cache_with("a")
    ticket = cache.ticket()
    cache.forget(9, "elsewhere")
    assert not cache.put(2, "b", RoomRef(2, "b", False), ticket)
