"""The archive's JSON API (SPEC §7): paging back through a room, and search."""

from __future__ import annotations

from chatroom.controllers.errors import BadRequestError
from chatroom.views import api
from chatroom.views.base import JsonHandler

#: The query parameters of each endpoint; any other is refused (a typo must not
#: silently widen a search).
PAGE_PARAMETERS = frozenset({"before", "limit"})
SEARCH_PARAMETERS = frozenset({"q", "room", "user", "limit", "before"})


class ArchiveHandler(JsonHandler):
    """A handler of the archive's API: one value per query parameter."""

    def query(self, name: str) -> str | None:
        values = self.request.query_arguments.get(name)
        if values is None:
            return None
        if len(values) != 1:
            raise BadRequestError(f"give {name} once")
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(f"{name} must be UTF-8 text") from None


class RoomMessagesHandler(ArchiveHandler, api.RoomMessagesApiHandler):
    """``GET /api/rooms/<r>/messages``: with ``before``/``limit`` a page of the whole
    history (Redis and the archive); with neither, the retained history as before."""

    async def get(self, name: str) -> None:
        arguments = set(self.request.query_arguments)
        if not arguments & PAGE_PARAMETERS:
            return await super().get(name)
        if "since" in arguments:
            raise BadRequestError("since cannot be combined with before or limit")
        account = self.require_user()
        page = await self.controllers.archive.page(
            account, name, self.query("before"), self.query("limit")
        )
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(
            b'{"messages":[%b],"more":%b}'
            % (b",".join(page.items), b"true" if page.more else b"false")
        )


class SearchHandler(ArchiveHandler):
    """``GET /api/search?q=&room=&user=&limit=&before=``: newest first, readable rooms only."""

    async def get(self) -> None:
        account = self.require_user()
        unknown = set(self.request.query_arguments) - SEARCH_PARAMETERS
        if unknown:
            raise BadRequestError(f"unknown parameter {sorted(unknown)[0]!r}")
        found = await self.controllers.archive.search(
            account,
            self.query("q"),
            room=self.query("room"),
            user=self.query("user"),
            limit=self.query("limit"),
            before=self.query("before"),
        )
        self.send_json({"results": found.results, "more": found.more})
