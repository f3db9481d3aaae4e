"""RoomAccessCache: which (user, room) pairs this process has checked, so the hot path
needs no SQL.

An LRU of (user id, room name) -> ``RoomRef``. Entries are dropped by name
(``forget``, ``forget_room``, ``forget_user``: a room deleted, a user disabled) or
by version: every entry carries the access version it was looked up under, and
``invalidate_before(version)`` (a bumped version published on the event bus, e.g.
by moderation) drops those older than it in every process. Moderation's removals
are applied by name and ``advance`` the version; a skipped version (a missed event),
or a newer version found in Redis after the subscription was down, drops the older
ones. A lookup that was in flight while anything was invalidated is not stored, so a
check made before a change never outlives it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from chatroom.controllers.room_values import RoomRef

#: (user, room) access checks remembered per process; the oldest are forgotten first.
ACCESS_CACHE_SIZE = 50_000

AccessKey = tuple[int, str]


class RoomAccessCache:
    """An LRU of checked (user id, room name) pairs, with named and versioned invalidation.

    ``version`` is the newest access version this process has heard of (0 until
    one is published). Usage on a miss::

        ticket = cache.ticket()
        ref = await rooms.join(account, name)  # the check, in SQL
        cache.put(account.id, name, ref, ticket)
    """

    def __init__(self, size: int = ACCESS_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[AccessKey, tuple[RoomRef, int]] = OrderedDict()
        self.version = 0
        # Bumped by every invalidation: a ticket older than it is not stored.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[AccessKey]:
        return iter(list(self._entries))

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, user_id: int, room: str) -> RoomRef | None:
        """The cached room, now the most recently used; None if unchecked."""
        key = (user_id, room)
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def ticket(self) -> int:
        """Taken before a lookup; ``put`` stores its result only if nothing was
        invalidated meanwhile."""
        return self._generation

    def put(self, user_id: int, room: str, ref: RoomRef, ticket: int) -> bool:
        """Remember a check made since ``ticket``; False (not stored) when it is stale."""
        if ticket != self._generation:
            return False
        self._entries[(user_id, room)] = (ref, self.version)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return True

    def forget(self, user_id: int, room: str) -> None:
        """Drop one user's check of one room (e.g. the user left it for good)."""
        self._generation += 1
        self._entries.pop((user_id, room), None)

    def forget_room(self, room: str) -> int:
        """Drop every check of ``room`` (it was deleted); how many there were."""
        return self._drop(lambda key, _version: key[1] == room)

    def forget_user(self, user_id: int) -> int:
        """Drop every check of ``user_id`` (they were disabled); how many there were."""
        return self._drop(lambda key, _version: key[0] == user_id)

    def invalidate_before(self, version: int) -> int:
        """Drop the checks made under an access version older than ``version`` and
        remember it; how many were dropped. An old or repeated version drops nothing."""
        if version <= self.version:
            return 0
        self.version = version
        return self._drop(lambda _key, stamp: stamp < version)

    def advance(self, version: int) -> int:
        """Note the access version of a change this process applied by name (a
        ``forget``): the next version needs nothing more dropped, but a version that
        skips one (an event this process missed) drops every older check, as
        ``invalidate_before``. How many were dropped."""
        if version > self.version + 1:
            return self.invalidate_before(version)
        self.version = max(self.version, version)
        return 0

    def _drop(self, doomed: Callable[[AccessKey, int], bool]) -> int:
        self._generation += 1
        keys = [key for key, (_ref, stamp) in self._entries.items() if doomed(key, stamp)]
        for key in keys:
            del self._entries[key]
        return len(keys)
