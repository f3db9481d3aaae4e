"""The JSON API of sign-up invites (SPEC §6): site admins make, list and revoke them."""

from __future__ import annotations

from urllib.parse import quote

from chatroom.controllers.signup import SignupController
from chatroom.controllers.site_admin import require_admin
from chatroom.views.base import JsonHandler


class InviteHandlerBase(JsonHandler):
    """Reaches the sign-up controller; every route here is for site admins (403 else)."""

    @property
    def signup(self) -> SignupController:
        return self.controllers.signup

    def invite_url(self, code: str) -> str:
        """The link that registers with ``code``: this server's ``/register?invite=``."""
        base = f"{self.request.protocol}://{self.request.host}"
        return f"{base}/register?invite={quote(code, safe='')}"


class InvitesApiHandler(InviteHandlerBase):
    """``GET /api/invites``: the invites, newest first, without their codes.
    ``POST /api/invites`` ``{"uses"?, "seconds"?}``: a new code, shown this once."""

    async def get(self) -> None:
        invites = await self.signup.list_invites(self.require_user())
        self.send_json({"registration": self.signup.mode, "invites": [i.public() for i in invites]})

    async def post(self) -> None:
        account = self.require_user()
        require_admin(account)  # before the body: a non-admin learns nothing from it
        body = self.json_body()
        made = await self.signup.create_invite(account, body.get("uses"), body.get("seconds"))
        self.send_json({**made.public(), "url": self.invite_url(made.code)}, status=201)


class InviteApiHandler(InviteHandlerBase):
    """``DELETE /api/invites/<id>``: revoke; its remaining uses are refused from now on."""

    async def delete(self, which: str) -> None:
        invite = await self.signup.revoke_invite(self.require_user(), which)
        self.send_json({"invite": invite.public()})
