"""The chat pages: ``GET /`` and ``/rooms/<name>`` (the chat UI, also usable without
JavaScript), and the plain forms behind it: send, new room, direct message."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import tornado.web

from chatroom.controllers import Account, ChatError
from chatroom.controllers.errors import BadRequestError, UnavailableError
from chatroom.controllers.validation import dm_room_name
from chatroom.views.base import PageHandler
from chatroom.views.timeline import timeline
from chatroom.views.ui_methods import error_text, room_url


def dm_peer(account: Account, room: str) -> str:
    """The other person of a ``dm:a:b`` room (or the user, in a note-to-self)."""
    _, first, second = room.split(":", 2)
    return second if first == account.key else first


class ChatPageHandler(PageHandler):
    """``GET /``, ``GET /rooms/<name>``: the chat UI on a room. ``POST /rooms/<name>``:
    send a message from the plain form (the page without JavaScript)."""

    async def get(self, name: str = "lobby") -> None:
        if self.current_user is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        await self.render_room(name)

    async def post(self, name: str = "lobby") -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}), status=303)
            return
        # Forms send line breaks as CRLF; the JavaScript client sends what was typed.
        text = self.get_body_argument("text", "").replace("\r\n", "\n")
        client_id = self.get_body_argument("client_id", "") or None
        try:
            await self.controllers.chat.post(account, name, text, client_id)
        except ChatError as exc:
            if exc.code in ("not_found", "forbidden", "unauthorized"):
                raise  # about the room, not the message: the error page
            self.set_status(exc.status)
            message = error_text(self, exc.code, max_chars=self.config.max_message_chars)
            await self.render_room(name, error=message, error_code=exc.code, draft=text)
            return
        # "#latest": without JavaScript, the browser scrolls the list to the newest message.
        self.redirect(room_url(self, name) + "#latest", status=303)

    async def render_room(
        self, name: str, error: str | None = None, error_code: str = "", draft: str = ""
    ) -> None:
        account = self.current_user
        assert account is not None
        rooms = self.controllers.rooms
        try:
            ref = await rooms.open(account, name)
        except BadRequestError:
            raise tornado.web.HTTPError(404, "no such room") from None
        try:
            page = await rooms.history(account, ref.name, None)
            messages, missing = page.decoded(), page.missing
            summaries = await rooms.list_rooms(account)
        except UnavailableError:
            # Redis is down: still a page, saying so; the client reconnects by itself.
            messages, missing, summaries = [], 0, []
            error_code = error_code or "unavailable"
            error = error or error_text(self, "unavailable")
        here = next((r for r in summaries if r.name == ref.name), None)
        # SPEC §6: whose messages this user hides (lowercased names); static/js/blocking.js
        # keeps it up to date from data-blocked.
        blocks = self.controllers.blocks
        blocked = {b.name.lower() for b in await blocks.blocked(account)} if blocks else set()
        first_unread = None
        if here is not None and here.member and here.unread > 0:
            first_unread = here.last_id - here.unread + 1
        self.render(
            "chat.html",
            room=ref.name,
            room_label=dm_peer(account, ref.name) if ref.is_direct else ref.name,
            is_direct=ref.is_direct,
            topic=here.topic if here is not None else "",
            public_rooms=[r for r in summaries if not r.is_direct],
            direct_rooms=[(r, dm_peer(account, r.name)) for r in summaries if r.is_direct],
            timeline=timeline(messages, first_unread, account.name),
            missing=missing,
            max_chars=self.config.max_message_chars,
            error=error,
            error_code=error_code,
            draft=draft,
            # A fresh id per rendered form: submitting the same form twice stores it once.
            client_id=uuid.uuid4().hex,
            blocked=blocked,
        )


class CreateRoomHandler(PageHandler):
    """``POST /rooms``: the "New room" form without JavaScript; opens the room."""

    async def post(self) -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login", status=303)
            return
        name = self.get_body_argument("name", "").strip()
        try:
            private = self.get_body_argument("private", "") == "1"  # issue 13
            await self.controllers.rooms.create(account, name, private=private)
        except ChatError as exc:
            if exc.code != "conflict":
                raise
            # It exists already: take the user there, which is what they wanted.
        self.redirect(room_url(self, name), status=303)


class DirectMessageHandler(PageHandler):
    """``GET /dm?user=<name>``: the "Chat with" form; redirects to ``/rooms/dm:a:b``."""

    async def get(self) -> None:
        account = self.current_user
        if account is None:
            self.redirect("/login?" + urlencode({"next": self.request.uri}))
            return
        wanted = self.get_query_argument("user", "").strip()
        peer = await self.controllers.auth.lookup_user(wanted, self.request.remote_ip)
        if peer is None:
            self.set_status(404)
            _ = self.locale.translate
            message = _("There is no user named %(name)s.") % {"name": wanted}
            self.render("error.html", status=404, code="not_found", message=message)
            return
        self.redirect(room_url(self, dm_room_name(account.key, peer.key)), status=303)
