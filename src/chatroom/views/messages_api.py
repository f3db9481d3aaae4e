"""The JSON API of SPEC §5 for bots and scripts: send, edit and delete messages over HTTP.

Same rules, rate limits and ``client_id`` dedupe as the socket: each route calls
the chat controller's verb the socket uses.
"""

from __future__ import annotations

from chatroom.controllers.errors import BadRequestError
from chatroom.controllers.validation import MAX_ID
from chatroom.views import archive


def message_id(value: str) -> int:
    """The id of a message route (``/messages/<id>``)."""
    if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
        raise BadRequestError("the message id must be an integer in 0..2^53")
    return int(value)


class RoomMessagesHandler(archive.RoomMessagesHandler):
    """``GET`` history (and pages) as before; ``POST /api/rooms/<r>/messages`` sends."""

    async def post(self, name: str) -> None:
        account = self.require_user()
        body = self.json_body()
        chat = self.controllers.chat
        message = await chat.post(
            account,
            name,
            body.get("text"),
            body.get("client_id"),
            body.get("files"),
            body.get("reply_to"),
        )
        self.send_json({"id": message, "room": name}, status=201)


class MessageHandler(archive.ArchiveHandler):
    """``PATCH`` (edit) and ``DELETE`` ``/api/rooms/<r>/messages/<id>``."""

    async def patch(self, name: str, mid: str) -> None:
        account = self.require_user()
        body = self.json_body()
        result = await self.controllers.chat.change(
            account, name, "edit", message_id(mid), body.get("text")
        )
        self.send_json({"id": result.id, "room": name, "rev": result.rev})

    async def delete(self, name: str, mid: str) -> None:
        account = self.require_user()
        result = await self.controllers.chat.change(account, name, "delete", message_id(mid))
        self.send_json({"id": result.id, "room": name, "rev": result.rev})
