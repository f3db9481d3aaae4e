"""The JSON API of SPEC §2: register, login, logout, rooms and room history."""

from __future__ import annotations

import orjson
import tornado.web

from chatroom.controllers.errors import BadRequestError
from chatroom.controllers.validation import MAX_ID
from chatroom.views.base import JsonHandler


class RegisterApiHandler(JsonHandler):
    """``POST /api/register``: under ``--registration`` (SPEC §6): ``"invite"`` carries
    the invite code in ``invite`` mode; 403 without a valid one, or when closed."""

    async def post(self) -> None:
        body = self.json_body()
        account = await self.controllers.signup.register(
            body.get("username"), body.get("password"), body.get("invite"), self.request.remote_ip
        )
        self.send_json({"user": account.public()}, status=201)


class LoginApiHandler(JsonHandler):
    async def post(self) -> None:
        body = self.json_body()
        auth = self.controllers.auth
        account, token = await auth.login(
            body.get("username"), body.get("password"), self.request.remote_ip
        )
        self.start_session(token)
        self.send_json({"user": account.public(), "token": token})


class LogoutApiHandler(JsonHandler):
    """``POST /api/logout`` ends the caller's session; ``?all=1`` every session of theirs.

    Either way the ended sessions' sockets are closed (1008) on every process.
    """

    async def post(self) -> None:
        account = self.require_user()
        everywhere = self.get_query_argument("all", "0")
        if everywhere not in ("0", "1"):
            raise BadRequestError("all must be 1 (every session) or 0 (this one)")
        if everywhere == "1":
            await self.controllers.auth.logout_all(account)
        else:
            await self.controllers.auth.logout(self.credentials.token)
        if self.authenticated_by == "cookie":
            self.end_session()
        self.send_json({"ok": True})


class MeApiHandler(JsonHandler):
    """``GET /api/me``: the caller's account and site role (SPEC §6)."""

    async def get(self) -> None:
        self.send_json({"user": self.require_user().me()})


class RoomsApiHandler(JsonHandler):
    async def get(self) -> None:
        rooms = await self.controllers.rooms.list_rooms(self.require_user())
        self.send_json({"rooms": [room.public() for room in rooms]})

    async def post(self) -> None:
        account = self.require_user()
        body = self.json_body()
        room = await self.controllers.rooms.create(
            account, body.get("name"), body.get("topic"), body.get("private")
        )
        self.send_json({"room": room.public()}, status=201)


class RoomMessagesApiHandler(JsonHandler):
    async def get(self, name: str) -> None:
        account = self.require_user()
        since = self.get_query_argument("since", None)
        page = await self.controllers.rooms.history(account, name, parse_since(since))
        # Stored messages are already JSON; splice them in instead of re-encoding.
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # [SPEC §8] ``epoch``: the life of the room's history that ``since`` counts in
        # (null before the room's first join or send made one).
        self.finish(
            b'{"messages":[%b],"gap":%b,"missing":%d,"epoch":%b}'
            % (
                b",".join(page.items),
                b"true" if page.gap else b"false",
                page.missing,
                orjson.dumps(page.epoch),
            )
        )


def parse_since(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
        raise BadRequestError("since must be an integer in 0..2^53")
    return int(value)


class ApiNotFoundHandler(JsonHandler):
    """Every unknown ``/api/`` path, whatever the method: 404 as JSON."""

    SUPPORTED_METHODS = tornado.web.RequestHandler.SUPPORTED_METHODS

    def check_xsrf_cookie(self) -> None:
        pass  # it acts for no one, so there is nothing to forge; 404 says more than 403

    def prepare(self) -> None:
        self.send_json({"error": {"code": "not_found", "message": "no such API route"}}, 404)
