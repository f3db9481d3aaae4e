"""Posting: a new message's way into its room, past what the text alone needs — the
files it carries (SPEC §9), the message it replies to and the users it mentions
(SPEC §5), and the one Redis round trip that stores and publishes it.

``ChatController.post`` (the façade) checks the text and the room; then here: the
``reply_to`` is looked up (``not_found`` for an id the room never had), the
mentions resolved, the sender's per-process bucket taken, the files reserved in
SQL, and the message appended with one script (which also checks the user's
bucket for the room, shared by every process, and the room's bans, mutes and
read-only flag: SPEC §6), retried through a Redis outage.
Afterwards the files are attached to the message, or freed when it was not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chatroom.controllers import validation
from chatroom.controllers.accounts import Account
from chatroom.controllers.epochs import RoomEpochs
from chatroom.controllers.errors import (
    BadRequestError,
    ForbiddenError,
    RateLimitedError,
    UnavailableError,
)
from chatroom.controllers.files import FilesController
from chatroom.controllers.limits import SendLimiter, SendLimits
from chatroom.controllers.message_changes import MessageChanges
from chatroom.controllers.redis_outage import AMBIGUOUS_SEND_RETRY_SECONDS, append_retrying
from chatroom.controllers.room_rules import RemovedError, RoomRules
from chatroom.controllers.room_values import RoomRef
from chatroom.metrics import Metrics
from chatroom.models import MessageRepository
from chatroom.models.limits import SendRate, SendRateExceeded
from chatroom.models.messages import FsyncTimeout, StoredMessage


class Posting:
    """The send path behind ``ChatController.post``: text checks, reply, mentions,
    files, and the append."""

    def __init__(
        self,
        messages: MessageRepository,
        limits: SendLimits,
        limiter: SendLimiter,
        metrics: Metrics,
        stopping: asyncio.Event,
        files: FilesController | None = None,
        changes: MessageChanges | None = None,
    ) -> None:
        self._messages = messages
        self._limits = limits
        self._limiter = limiter
        self._metrics = metrics
        self._stopping = stopping
        #: Uploaded files (SPEC §9); None on a server that takes none.
        self.files = files
        #: Replies and mentions (SPEC §5), and the edit, delete and react verbs.
        self.changes = changes
        #: [SPEC §8] How long a send retries while Redis does not answer (a failover).
        self.retry_seconds = AMBIGUOUS_SEND_RETRY_SECONDS
        #: [SPEC §8] The rooms' epochs and id floors (set by ``ChatController``).
        self.epochs: RoomEpochs | None = None
        #: [issue 13] The rooms' rules (bans, mutes, read-only) the send script checks.
        self.rules: RoomRules | None = None
        #: [issue 13] Forget a (user id, room) access check: a script found a ban.
        self.forget_access: Callable[[int, str], None] = lambda user_id, room: None

    def check(self, text: object, client_id: object, files: object) -> tuple[str, str | None]:
        """The message's text and ``client_id``, validated before anything is looked up.

        A message of files alone may have no text; files on a server without them
        are refused here.
        """
        if files is not None and text in (None, ""):
            body = ""
        else:
            body = validation.message_text(text, self._limits.max_chars)
        if files is not None and self.files is None:
            raise BadRequestError("this server does not take files")
        return body, validation.client_id(client_id)

    async def post(
        self,
        account: Account,
        ref: RoomRef,
        body: str,
        cid: str | None,
        files: object = None,
        reply_to: object = None,
    ) -> int:
        """Store the checked message in ``ref`` and publish it; the message id."""
        fields = await self._reply_and_mentions(account, ref, body, reply_to)
        self._limiter.take_send(account.key)
        claim, objects = None, None
        if files is not None and self.files is not None:
            _, objects, claim = await self.files.claim(account, ref, files, cid)
        try:
            stored = await self._append(account, ref, body, cid, objects, fields)
        except Exception:
            if claim is not None and self.files is not None:  # free the files
                await self.files.unclaim(claim)
            raise
        if claim is not None and self.files is not None:  # the files are the message's now
            await self.files.attach(claim, stored.id)
        if stored.created:
            self._metrics.messages_stored.inc()
        return stored.id

    async def change(self, account: Account, ref: RoomRef, verb: str, *args: object):
        """Edit, delete or react (``verb``, a ``MessageChanges`` method) for ``account``
        in ``ref``: a change takes a token from the same buckets as a send."""
        assert self.changes is not None
        self._limiter.take_send(account.key)
        try:
            return await getattr(self.changes, verb)(account, ref, *args)
        except RemovedError:
            self.forget_access(account.id, ref.name)  # [issue 13] banned
            raise
        except RateLimitedError:
            self._limiter.refund_send(account.key)  # nothing was changed
            self._metrics.rate_limited.inc()
            raise

    async def _append(
        self,
        account: Account,
        ref: RoomRef,
        body: str,
        cid: str | None,
        objects: list[dict] | None,
        fields: dict,
    ) -> StoredMessage:
        """The one round trip, with its refusals turned into the protocol's errors."""
        rate = SendRate(self._limits.burst, self._limits.per_second)
        rules = self.rules
        if rules is not None:  # [issue 13] bans, mutes, read-only: checked in the script
            fields = {**fields, "rules": rules.check(account, ref)}

        async def store() -> StoredMessage:
            return await append_retrying(
                self._messages,
                self._stopping,
                ref.name,
                account.name,
                body,
                cid,
                rate,
                objects,
                epochs=self.epochs,  # SPEC §8
                room_id=ref.id,
                retry_seconds=self.retry_seconds,
                **fields,
            )

        try:
            return await (rules.retrying(ref, store) if rules is not None else store())
        except ForbiddenError as exc:  # [issue 13] refused by the room's rules
            self._limiter.refund_send(account.key)
            if isinstance(exc, RemovedError):  # banned: check the room again next time
                self.forget_access(account.id, ref.name)
            raise
        except SendRateExceeded as exc:
            self._limiter.refund_send(account.key)  # nothing was sent
            self._metrics.rate_limited.inc()
            raise RateLimitedError(
                "too many messages; wait before sending again", exc.retry_after
            ) from None
        except FsyncTimeout as exc:
            raise UnavailableError("the message is not yet safely stored; retry") from exc

    async def _reply_and_mentions(
        self, account: Account, ref: RoomRef, body: str, reply_to: object
    ) -> dict:
        """The ``reply_to`` and mentions of a new message (SPEC §5), as the append's fields."""
        changes = self.changes
        if changes is None:
            if reply_to is not None:
                raise BadRequestError("this server does not take replies")
            return {}
        fields: dict = {}
        quote = await changes.reply_to(ref, reply_to)
        if quote is not None:
            fields["reply_to"] = quote
        if changes.mentions is not None and body:
            mentioned = await changes.mentions.mentioned(ref, body)
            if mentioned:
                fields["mentions"] = mentioned
                blockers = await changes.mentions.blockers(account.id)  # issue 13
                keys = changes.mention_keys(ref.name, mentioned, account, blockers)
                fields["mention_keys"] = keys
        return fields
