"""The JSON API of blocking (SPEC §6): block, unblock and list the users one blocked."""

from __future__ import annotations

from chatroom.controllers.blocks import BlockController
from chatroom.views.base import JsonHandler


class BlockHandlerBase(JsonHandler):
    @property
    def blocks(self) -> BlockController:
        return self.controllers.blocks


class BlocksApiHandler(BlockHandlerBase):
    """``GET /api/blocks``: whom the caller blocked. ``POST /api/blocks`` ``{"user"}``:
    block (201; 200 when it was blocked already)."""

    async def get(self) -> None:
        blocked = await self.blocks.blocked(self.require_user())
        self.send_json({"blocks": [b.public() for b in blocked]})

    async def post(self) -> None:
        account = self.require_user()
        body = self.json_body()
        name, new = await self.blocks.block(account, body.get("user"))
        self.send_json({"user": name, "blocked": True}, status=201 if new else 200)


class BlockApiHandler(BlockHandlerBase):
    """``DELETE /api/blocks/<user>``: unblock (200 whether or not there was a block)."""

    async def delete(self, name: str) -> None:
        user, _ = await self.blocks.unblock(self.require_user(), name)
        self.send_json({"user": user, "blocked": False})
