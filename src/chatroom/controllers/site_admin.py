"""SiteAdminController: what site admins do on the admin page (SPEC §6) — list the
accounts, disable and enable them, promote and demote — through the operator's own
``AdminController`` actions, recorded in the audit log under the admin's name."""

from __future__ import annotations

from chatroom.controllers.accounts import Account
from chatroom.controllers.admin import AdminController, UserInfo
from chatroom.controllers.errors import BadRequestError, ForbiddenError


def require_admin(actor: Account) -> str:
    """The actor's name if they are a site admin, else ``ForbiddenError``. The role is
    the one read with the request's session, so a demotion counts from the next one."""
    if not actor.is_admin:
        raise ForbiddenError("only site admins may do this")
    return actor.name


class SiteAdminController:
    """The admin page's user actions, for signed-in site admins."""

    def __init__(self, admin: AdminController) -> None:
        self._admin = admin

    async def users(self, actor: Account) -> list[UserInfo]:
        """Every account, by name, with its role, state and live sessions."""
        require_admin(actor)
        return await self._admin.list_users()

    async def update_user(
        self, actor: Account, name: object, disabled: object = None, role: object = None
    ) -> UserInfo:
        """Set ``disabled`` (bool) and/or ``role`` (``admin``/``user``) of the user ``name``.

        Disabling ends the user's sessions and closes their sockets on every process,
        as ``chatroom users disable`` does. An admin cannot disable or demote
        themself here (another admin or the operator can), so the page never locks
        its last admin out.
        """
        who = require_admin(actor)
        if disabled is None and role is None:
            raise BadRequestError("give disabled (true or false) or role (admin or user)")
        if disabled is not None and not isinstance(disabled, bool):
            raise BadRequestError("disabled must be true or false")
        if role is not None and role not in ("admin", "user"):
            raise BadRequestError("role must be admin or user")
        yourself = isinstance(name, str) and name.lower() == actor.key
        if yourself and (disabled is True or role == "user"):
            raise ForbiddenError("you cannot disable or demote yourself")
        info: UserInfo | None = None
        if role is not None:
            info, _ = await self._admin.set_role(name, role, actor=who)
        if disabled is True:
            info, _ = await self._admin.disable_user(name, actor=who)
        elif disabled is False:
            info = await self._admin.enable_user(name, actor=who)
        assert info is not None
        return info
