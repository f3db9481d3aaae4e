"""Mentions (SPEC §5.3): which users a message text calls with ``@name``, ``@all``, ``@here``.

Parsed on the server at send and edit time. A text without ``@`` costs nothing;
otherwise the names are looked up in SQL (off the event loop), through a
per-process cache that forgets an answer after ``CACHE_SECONDS``: a user who
registers is mentionable within that time.

[issue 13] A mention by a user one blocked (SPEC §6) is not counted as one's unread
mention: ``blockers`` says who blocked the author (cached the same way, and forgotten
at once on every process when a block is made or lifted: ``forget_blocks``, from the
``blocks_changed`` control event). The message still lists the name in ``mentions``
(that is what its text says); only the count leaves it out.
"""

from __future__ import annotations

import re
import time

from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.room_values import RoomRef
from chatroom.controllers.validation import DM_NAME_RE
from chatroom.models import Block, Membership, User

#: ``@name``: a username (SPEC §2) not preceded by a letter or digit.
MENTION_RE = re.compile(r"(?<![A-Za-z0-9])@([A-Za-z0-9_.-]{1,32})")
#: The words that mention every member of a room.
EVERYONE = ("all", "here")
#: ``@all``/``@here`` mention every member of rooms of at most this many members.
MAX_EVERYONE_MEMBERS = 200
#: How long a looked-up name or a room's member list is trusted.
CACHE_SECONDS = 30.0


class MentionResolver:
    """Turns a message text into the usernames it mentions (as registered)."""

    def __init__(self, run: BlockingRunner) -> None:
        self._run = run
        self._names: dict[str, tuple[float, str | None]] = {}
        self._members: dict[str, tuple[float, list[str]]] = {}
        self._blockers: dict[int, tuple[float, frozenset[str]]] = {}
        self._blocks_changed = 0  # bumped by forget_blocks: a lookup in flight is not kept

    async def mentioned(self, ref: RoomRef, text: str) -> list[str]:
        """The users ``text`` mentions who may read the room, in order of first mention."""
        if "@" not in text:
            return []
        words: list[str] = []
        for match in MENTION_RE.finditer(text):
            word = match.group(1).lower()
            # "@bob." at the end of a sentence: bob, unless "bob." is a name.
            for candidate in dict.fromkeys((word, word.rstrip(".-"))):
                if candidate and candidate not in words:
                    words.append(candidate)
        if not words:
            return []
        found: list[str] = []
        if any(word in EVERYONE for word in words):
            found += await self._everyone(ref)
        names = await self._lookup([w for w in words if w not in EVERYONE])
        allowed = _readers(ref)
        for word in words:
            name = names.get(word)
            if name is not None and (allowed is None or word in allowed):
                found.append(name)
        return list(dict.fromkeys(found))

    async def blockers(self, author_id: int) -> frozenset[str]:
        """The user keys who blocked ``author_id``: the author's mentions of them do not
        count as their unread mentions."""
        now = time.monotonic()
        hit = self._blockers.get(author_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._blocks_changed
        keys = frozenset(await self._run(Block.blockers_of, author_id))
        if generation == self._blocks_changed:
            if len(self._blockers) > 10_000:
                self._blockers = {k: v for k, v in self._blockers.items() if v[0] > now}
            self._blockers[author_id] = (now + CACHE_SECONDS, keys)
        return keys

    def forget_blocks(self, user_ids: list[int]) -> None:
        """A block between these users was made or lifted: ask SQL again next time."""
        self._blocks_changed += 1
        for user_id in user_ids:
            self._blockers.pop(user_id, None)

    async def _lookup(self, words: list[str]) -> dict[str, str | None]:
        now = time.monotonic()
        known = {w: hit[1] for w in words if (hit := self._names.get(w)) and hit[0] > now}
        missing = [w for w in words if w not in known]
        if missing:
            rows = await self._run(User.names_of, missing)
            for word in missing:
                known[word] = rows.get(word)
                self._names[word] = (now + CACHE_SECONDS, rows.get(word))
            if len(self._names) > 10_000:
                self._names = {k: v for k, v in self._names.items() if v[0] > now}
        return known

    async def _everyone(self, ref: RoomRef) -> list[str]:
        now = time.monotonic()
        hit = self._members.get(ref.name)
        if hit is None or hit[0] <= now:
            members = await self._run(Membership.member_names, ref.id, MAX_EVERYONE_MEMBERS + 1)
            hit = self._members[ref.name] = (now + CACHE_SECONDS, members)
            if len(self._members) > 10_000:
                self._members = {k: v for k, v in self._members.items() if v[0] > now}
        # Bigger rooms: only moderators (SPEC §6, issue 13) may call everyone.
        return hit[1] if len(hit[1]) <= MAX_EVERYONE_MEMBERS else []


def _readers(ref: RoomRef) -> set[str] | None:
    """The user keys who may read the room; None for a public room (everyone)."""
    dm = DM_NAME_RE.match(ref.name)
    return set(dm.groups()) if dm else None
