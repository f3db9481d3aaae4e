"""MessageChanges: edit, delete and react to stored messages, and replies (SPEC §5).

Each verb checks its arguments, then hands ``ChangeCommits`` (change_commits.py)
a function that checks the rules against the message as read and computes the new
message and its change frame; that reads the message (from the room's Redis log,
or, once trimmed from it, from the SQL archive), commits it with one atomic script
and retries on a conflict, so concurrent changes never lose one another and the
last writer wins. The change then goes to the SQL archive, and a delete releases
the message's files.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.audit import AuditLog
from chatroom.controllers.change_commits import ChangeCommits, ChangeResult
from chatroom.controllers.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    storage_guard,
)
from chatroom.controllers.mentions import MentionResolver
from chatroom.controllers.room_rules import RoomRules
from chatroom.controllers.room_values import RoomRef
from chatroom.models.limits import SendRate
from chatroom.models.message_changes import Change, MessageChangeRepository
from chatroom.models.room_rules import ACCESS

log = logging.getLogger(__name__)

#: At most this many distinct emoji on one message (SPEC §5).
MAX_REACTIONS = 20
#: An emoji is 1..this many code points.
MAX_EMOJI_CODE_POINTS = 32
#: A reply quotes the first this many code points of its parent.
REPLY_QUOTE_CHARS = 200
#: Fields a deleted message keeps (the rest, text and reactions included, go).
TOMBSTONE_FIELDS = ("type", "room", "id", "user", "text", "ts")


def emoji(value: object) -> str:
    """A reaction: 1..32 code points, no whitespace, control characters or NUL."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EMOJI_CODE_POINTS:
        raise BadRequestError(f"emoji must be 1-{MAX_EMOJI_CODE_POINTS} characters")
    if validation.has_lone_surrogate(value) or any(
        ch.isspace() or unicodedata.category(ch) in ("Cc", "Zs", "Zl", "Zp") for ch in value
    ):
        raise BadRequestError("emoji must not contain whitespace or control characters")
    return value


def may_delete(account: Account, room: RoomRef, message: dict, moderator: bool = False) -> bool:
    """Whether ``account`` may delete ``message`` of ``room``: its author, or (SPEC §6) a
    ``moderator`` of the room — an owner, moderator or site admin, as SQL says now."""
    return moderator or str(message.get("user", "")).lower() == account.key


def reply_quote(message_id: int, parent: dict | None) -> dict:
    """The ``reply_to`` of a reply: the parent's id, author and the start of its text;
    the id alone when the parent is unknown (trimmed) or deleted."""
    if parent is None or parent.get("deleted"):
        return {"id": message_id}
    text = str(parent.get("text", ""))[:REPLY_QUOTE_CHARS]
    return {"id": message_id, "user": parent["user"], "text": text}


class MessageChanges:
    """The edit, delete and react verbs, and what a reply quotes."""

    def __init__(
        self,
        repo: MessageChangeRepository,
        rate: SendRate,
        max_chars: int,
        mentions: MentionResolver | None = None,
        edit_window: float = 0.0,
    ) -> None:
        self._repo = repo
        self._max_chars = max_chars
        self.mentions = mentions
        self._edit_window = edit_window
        self._commits = ChangeCommits(repo, rate)
        #: Set by the composition root: the files (a delete releases them).
        self.files = None
        #: [issue 13] Set by the composition root: whether a user is staff of a room
        #: now (deleting others' messages), and the audit log.
        self.may_moderate: Callable[[Account, RoomRef], Awaitable[bool]] | None = None
        self.audit: AuditLog | None = None

    @property
    def rules(self) -> RoomRules | None:
        """[issue 13] The rooms' rules each change's script checks (set by the
        composition root)."""
        return self._commits.rules

    @rules.setter
    def rules(self, rules: RoomRules | None) -> None:
        self._commits.rules = rules

    @property
    def archive(self):
        """The SQL archive: archived messages are read from it, every change reaches it
        (set by the composition root)."""
        return self._commits.archive

    @archive.setter
    def archive(self, archive) -> None:
        self._commits.archive = archive

    def mention_keys(
        self, room: str, names: list[str], author: Account, blockers: frozenset[str] = frozenset()
    ) -> list[str]:
        """The mention sets a new message's id goes into (not the author's own, nor those
        of ``blockers``: the users who blocked the author, issue 13)."""
        keys = {name.lower() for name in names} - {author.key} - blockers
        return [self._repo.mention_key(room, key) for key in sorted(keys)]

    # -- replies -------------------------------------------------------------

    async def reply_to(self, ref: RoomRef, value: object) -> dict | None:
        """The ``reply_to`` of a send: None without one; ``not_found`` for an id this
        room never had."""
        if value is None:
            return None
        message_id = validation.message_id(value, "reply_to")
        with storage_guard():
            seq, stored = await self._repo.read(ref.name, message_id)
        if not 1 <= message_id <= seq:
            raise NotFoundError(f"no message {message_id} in {ref.name}")
        return reply_quote(message_id, stored.item if stored else None)

    # -- the verbs -----------------------------------------------------------

    async def edit(
        self, account: Account, ref: RoomRef, message_id: object, text: object
    ) -> ChangeResult:
        """Replace the text of one's own message."""
        mid = validation.message_id(message_id)
        body = validation.message_text(text, self._max_chars)
        mentioned = await self.mentions.mentioned(ref, body) if self.mentions else []
        blockers = await self.mentions.blockers(account.id) if mentioned else frozenset()

        def change(item: dict) -> Change:
            if item.get("deleted"):
                raise ForbiddenError("that message was deleted")
            if str(item.get("user", "")).lower() != account.key:
                raise ForbiddenError("only its author edits a message")
            window = self._edit_window
            if window > 0 and time.time() - float(item.get("ts", 0)) > window:
                raise ForbiddenError(f"messages can be edited for {window:g} seconds")
            edited = round(time.time(), 6)
            new = {**item, "text": body, "edited": edited}
            new.pop("mentions", None)
            if mentioned:
                new["mentions"] = mentioned
            event = {"type": "edited", "room": ref.name, "id": mid, "text": body}
            event["edited"] = edited
            adds, removes = _mention_moves(item, mentioned, account, blockers)
            return Change(new, event, adds, removes)

        return await self._commits.apply(account, ref, mid, change)

    async def delete(self, account: Account, ref: RoomRef, message_id: object) -> ChangeResult:
        """Delete a message (one's own; the room's staff: anyone's); it stays as a
        tombstone with its id. A delete of another's message is audited."""
        mid = validation.message_id(message_id)
        released: list[str] = []
        author = await self._commits.author_of(ref, mid)
        moderator = False
        if author != account.key and self.may_moderate is not None:
            moderator = await self.may_moderate(account, ref)  # fresh from SQL

        def change(item: dict) -> Change:
            if item.get("deleted"):
                raise ForbiddenError("that message was deleted")
            if not may_delete(account, ref, item, moderator):
                raise ForbiddenError("only its author or the room's moderators delete a message")
            new = {k: "" if k == "text" else v for k, v in item.items() if k in TOMBSTONE_FIELDS}
            new["deleted"] = True
            released[:] = [f.get("id") for f in item.get("files") or () if isinstance(f, dict)]
            event = {"type": "deleted", "room": ref.name, "id": mid}
            return Change(new, event, (), _mention_moves(item, [], account)[1])

        result = await self._commits.apply(account, ref, mid, change, ACCESS)
        if author != account.key and self.audit is not None:
            await self.audit.record(account.name, "delete_message", author, ref.name, f"#{mid}")
        if released and self.files is not None:
            try:
                await self.files.release(released)
            except Exception:  # the message is gone; ``chatroom files gc`` finds them later
                log.exception("could not release the files of %s/%d", ref.name, mid)
        return result

    async def react(
        self, account: Account, ref: RoomRef, message_id: object, value: object, on: object
    ) -> ChangeResult:
        """Add (``on``) or remove one's reaction; doing it twice changes nothing."""
        mid = validation.message_id(message_id)
        mark = emoji(value)
        if not isinstance(on, bool):
            raise BadRequestError("on must be true or false")

        def change(item: dict) -> Change | None:
            if item.get("deleted"):
                raise ForbiddenError("that message was deleted")
            reactions = {k: list(v) for k, v in (item.get("reactions") or {}).items()}
            users = reactions.get(mark, [])
            if (account.name in users) == on:
                return None  # already so
            if on:
                if mark not in reactions and len(reactions) >= MAX_REACTIONS:
                    raise BadRequestError(f"at most {MAX_REACTIONS} different emoji a message")
                reactions[mark] = [*users, account.name]
            else:
                users = [u for u in users if u != account.name]
                if users:
                    reactions[mark] = users
                else:
                    del reactions[mark]
            new = {**item, "reactions": reactions}
            if not reactions:
                del new["reactions"]
            event = {"type": "reaction", "room": ref.name, "id": mid, "emoji": mark}
            event.update(user=account.name, on=on)
            return Change(new, event)

        return await self._commits.apply(account, ref, mid, change)

    async def settle(self) -> None:
        """Wait for the archive updates in flight (tests, shutdown)."""
        await self._commits.settle()


def _mention_moves(
    item: dict, mentioned: list[str], account: Account, blockers: frozenset[str] = frozenset()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The user keys whose mention sets gain the message, and those that lose it
    (the author's own mention never counts as unread, nor one of a user who blocked
    the author)."""
    before = {u.lower() for u in item.get("mentions") or ()}
    after = {u.lower() for u in mentioned} - {account.key} - blockers
    return tuple(sorted(after - before)), tuple(sorted(before - after))
