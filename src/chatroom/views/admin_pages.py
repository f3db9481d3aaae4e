"""The site admin page (``/admin``, SPEC §6) and the JSON routes behind it: the users
with disable/enable and promote/demote, and the invites (static/js/admin.js)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import tornado.escape
import tornado.locale
import tornado.web

from chatroom.controllers.site_admin import SiteAdminController, require_admin
from chatroom.views import strings
from chatroom.views.base import JsonHandler, PageHandler


def admin_strings(locale: tornado.locale.Locale) -> dict[str, Any]:
    """What static/js/admin.js shows, translated."""
    _ = locale.translate
    return {
        "admin": _("admin"),
        "user": _("user"),
        "active": _("active"),
        "disabled": _("disabled"),
        "you": _("(you)"),
        "disable": _("Disable %(user)s"),
        "enable": _("Enable %(user)s"),
        "promote": _("Make %(user)s an admin"),
        "demote": _("Make %(user)s a plain user"),
        "disable_short": _("Disable"),
        "enable_short": _("Enable"),
        "promote_short": _("Make admin"),
        "demote_short": _("Remove admin"),
        "revoke": _("Revoke"),
        "revoke_label": _("Revoke the invite %(prefix)s…"),
        "invite_active": _("active"),
        "invite_used_up": _("used up"),
        "invite_expired": _("expired"),
        "invite_revoked": _("revoked"),
        "invite_uses": _("%(used)s of %(uses)s used"),
        "invite_none": _("No invites yet."),
        "copied": _("Copied."),
        "done_disable": _("%(user)s is disabled and signed out everywhere."),
        "done_enable": _("%(user)s may log in again."),
        "done_promote": _("%(user)s is now a site admin."),
        "done_demote": _("%(user)s is now a plain user."),
        "done_revoke": _("The invite %(prefix)s… is revoked."),
        "error": _("Something went wrong (%(code)s)."),
        "unreachable": _("Could not reach the server; try again."),
        "errors": strings.error_messages(locale),
    }


class AdminPageHandler(PageHandler):
    """``GET /admin``: the page, for site admins; a signed-out visitor goes to the login
    page, a signed-in non-admin gets the 403 page."""

    @property
    def site_admin(self) -> SiteAdminController:
        return self.controllers.site_admin

    def get(self) -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        if not account.is_admin:
            raise tornado.web.HTTPError(403, "only site admins may open this page")
        texts = tornado.escape.json_encode(admin_strings(self.locale)).replace("<", "\\u003c")
        self.render("admin.html", strings_json=texts, registration=self.config.registration)


class AdminUsersApiHandler(JsonHandler):
    """``GET /api/admin/users``: every account with its role, state and sessions."""

    async def get(self) -> None:
        users = await self.controllers.site_admin.users(self.require_user())
        self.send_json({"users": [user.public() for user in users]})


class AdminUserApiHandler(JsonHandler):
    """``PATCH /api/admin/users/<name>`` ``{"disabled"?, "role"?}``: the user, changed."""

    async def patch(self, name: str) -> None:
        account = self.require_user()
        require_admin(account)  # before the body: a non-admin learns nothing from it
        body = self.json_body()
        user = await self.controllers.site_admin.update_user(
            account, name, body.get("disabled"), body.get("role")
        )
        self.send_json({"user": user.public()})
