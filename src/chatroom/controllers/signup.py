"""SignupController: who may register (``--registration open|invite|closed``) and the
invite codes that site admins and the operator make (SPEC §6)."""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chatroom.controllers.accounts import Account
from chatroom.controllers.audit import AuditLog
from chatroom.controllers.auth import AuthController
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.errors import BadRequestError, ForbiddenError, NotFoundError
from chatroom.controllers.limits import take_action
from chatroom.models import Invite, InviteUnusable
from chatroom.models.audit import OPERATOR
from chatroom.models.database import utcnow
from chatroom.models.invites import DEFAULT_INVITE_SECONDS, MAX_INVITE_SECONDS, MAX_INVITE_USES
from chatroom.models.limits import ActionQuota

#: What an invite code looks like (ours are 24 URL-safe characters); anything else
#: is refused before any lookup.
INVITE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")
#: Invite ids in URLs and the CLI: positive integers the database can hold.
MAX_INVITE_ID = 2**53


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class InviteInfo:
    """An invite as the lists show it: never the code, only its first characters."""

    id: int
    prefix: str
    created: datetime
    created_by: str
    expires: datetime
    uses: int
    used: int
    state: str

    def public(self) -> dict:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "created": _iso(self.created),
            "created_by": self.created_by,
            "expires": _iso(self.expires),
            "uses": self.uses,
            "used": self.used,
            "state": self.state,
        }


@dataclass(frozen=True)
class NewInvite:
    """A just-made invite with its code: the only time the code is shown."""

    code: str
    invite: InviteInfo

    def public(self) -> dict:
        return {"code": self.code, **self.invite.public()}


def _info(invite: Invite) -> InviteInfo:
    return InviteInfo(
        invite.id,
        invite.prefix,
        invite.created,
        invite.created_by,
        invite.expires,
        invite.uses,
        invite.used,
        invite.state(),
    )


def _whole_number(value: object, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(f"{name} must be a whole number in {low}..{high}")
    return value


def invite_id(value: object) -> int:
    """An invite id from a URL, the CLI or JSON: a positive integer."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INVITE_ID:
        raise BadRequestError("an invite id is a positive whole number")
    return value


class SignupController:
    """Registration under the ``registration`` mode, and invite codes.

    ``register`` is what the form and ``POST /api/register`` call; the operator's
    ``chatroom users create`` goes around it (to ``AuthController.register``), so it
    works in every mode. The invite verbs take the acting account (a site admin) or
    None for the operator's shell, and are recorded in the audit log.
    """

    def __init__(
        self,
        run: BlockingRunner,
        auth: AuthController | None,
        mode: str = "open",
        quota: ActionQuota | None = None,
    ) -> None:
        self._run = run
        self._auth = auth
        self.mode = mode
        self._audit = AuditLog(run)
        #: [issue 13] Invites one site admin may make (``INVITES_LIMIT``); the operator's
        #: shell is not limited.
        self._quota = quota

    # -- registering --------------------------------------------------------

    async def register(
        self,
        username: object,
        password: object,
        invite: object = None,
        address: str | None = None,
    ) -> Account:
        """An account, if the mode lets this caller have one; ``ForbiddenError`` if not."""
        assert self._auth is not None, "a signup controller without auth cannot register"
        if self.mode == "closed":
            raise ForbiddenError("registration is closed; the operator makes accounts")
        if self.mode == "open":
            return await self._auth.register(username, password, address)
        code = self._code(invite)

        async def admit() -> None:  # after the throttle, before the slow hash
            if await self._run(Invite.usable, code) is None:
                raise ForbiddenError("that invite code is not valid")

        try:
            return await self._auth.register(
                username,
                password,
                address,
                admit=admit,
                create=functools.partial(Invite.register_user, code),
            )
        except InviteUnusable:  # its last use went to someone else meanwhile
            raise ForbiddenError("that invite code is not valid") from None

    @staticmethod
    def _code(invite: object) -> str:
        if invite is not None and not isinstance(invite, str):
            raise BadRequestError("invite must be text")
        if not invite or not INVITE_CODE_RE.match(invite):
            raise ForbiddenError("registering needs a valid invite code")
        return invite

    async def check_invite(self, invite: object) -> InviteInfo | None:
        """The invite a code stands for if it can be used now, else None (the register
        page says which it is)."""
        if not isinstance(invite, str) or not INVITE_CODE_RE.match(invite):
            return None
        found = await self._run(Invite.usable, invite)
        return _info(found) if found is not None else None

    # -- invites ------------------------------------------------------------

    @staticmethod
    def _admin(actor: Account | None) -> str | None:
        """The actor's name for the log (None: the operator); only site admins act."""
        if actor is None:
            return None
        if not actor.is_admin:
            raise ForbiddenError("only site admins manage invites")
        return actor.name

    async def create_invite(
        self, actor: Account | None, uses: object = None, seconds: object = None
    ) -> NewInvite:
        """A new code for ``uses`` registrations (1) within ``seconds`` (a week)."""
        who = self._admin(actor)
        if actor is not None:
            await take_action(self._quota, actor.id, "invites")
        count = _whole_number(uses, "uses", 1, MAX_INVITE_USES, 1)
        lasts = _whole_number(seconds, "seconds", 1, MAX_INVITE_SECONDS, DEFAULT_INVITE_SECONDS)
        code = secrets.token_urlsafe(18)  # 144 random bits, 24 characters
        expires = utcnow() + timedelta(seconds=lasts)
        invite = await self._run(Invite.issue, code, who or OPERATOR, count, expires)
        detail = f"{invite.prefix}… {count} uses, {lasts} s"
        await self._audit.record(who, "invite_create", None, None, detail)
        return NewInvite(code, _info(invite))

    async def list_invites(self, actor: Account | None) -> list[InviteInfo]:
        """The newest invites first, whatever their state; never their codes."""
        self._admin(actor)
        return [_info(invite) for invite in await self._run(Invite.listing)]

    async def revoke_invite(self, actor: Account | None, which: object) -> InviteInfo:
        """Refuse the invite's remaining uses from now on; ``NotFoundError`` if none."""
        who = self._admin(actor)
        number = invite_id(which)
        before = await self._run(Invite.get_or_none, Invite.id == number)
        if before is None:
            raise NotFoundError(f"no invite {number}")
        invite = await self._run(Invite.revoke, number)
        if invite is None:
            raise NotFoundError(f"no invite {number}")
        if before.revoked is None:
            await self._audit.record(
                who, "invite_revoke", None, None, f"{invite.prefix}… #{number}"
            )
        return _info(invite)
