"""make_app: the Tornado Application and its route table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import tornado.locale
import tornado.web

from chatroom.config import (
    LOCALE_DIR,
    WEBSOCKET_PING_INTERVAL_SECONDS,
    WEBSOCKET_PING_TIMEOUT_SECONDS,
    Config,
)
from chatroom.controllers import AuthController, ChatController, HealthController, RoomController
from chatroom.controllers.archive import ArchiveController
from chatroom.views import api, archive, pages
from chatroom.views.health import HealthHandler
from chatroom.views.socket import ChatSocketHandler, FrameWriter

PACKAGE_DIR = Path(__file__).parent
#: Room names in URLs: public names and ``dm:a:b``; the controllers validate them fully.
ROOM = r"([^/]+)"


@dataclass(frozen=True)
class Controllers:
    """The controllers one process runs; handlers reach them as ``self.controllers``."""

    auth: AuthController
    rooms: RoomController
    chat: ChatController
    health: HealthController
    archive: ArchiveController | None = None  # [archive] SPEC §7


def make_app(
    config: Config, controllers: Controllers, cookie_secret: str
) -> tornado.web.Application:
    routes = [
        (r"/", pages.ChatPageHandler),
        (r"/rooms", pages.CreateRoomHandler),
        (rf"/rooms/{ROOM}", pages.ChatPageHandler),
        (r"/dm", pages.DirectMessageHandler),
        (r"/locale", pages.LocaleHandler),
        (r"/login", pages.LoginHandler),
        (r"/register", pages.RegisterHandler),
        (r"/logout", pages.LogoutHandler),
        (r"/api/register", api.RegisterApiHandler),
        (r"/api/login", api.LoginApiHandler),
        (r"/api/logout", api.LogoutApiHandler),
        (r"/api/rooms", api.RoomsApiHandler),
        (rf"/api/rooms/{ROOM}/messages", archive.RoomMessagesHandler),  # [archive]
        (r"/api/search", archive.SearchHandler),  # [archive]
        (r"/healthz", HealthHandler),
        (r"/ws", ChatSocketHandler),
    ]
    # The UI's translations (Tornado keeps them process-wide); read once per app.
    tornado.locale.load_translations(str(LOCALE_DIR))
    return tornado.web.Application(
        routes,
        config=config,
        controllers=controllers,
        background_tasks=set[asyncio.Task](),
        frame_writer=FrameWriter(),
        # What this process has logged once already (e.g. an untrusted X-Forwarded-For).
        notices=set[str](),
        cookie_secret=cookie_secret,
        xsrf_cookies=True,
        # Over HTTPS BaseHandler.settings makes it Secure and __Host-xsrf; it lasts
        # as long as a session (Tornado would otherwise pick 30 days by itself).
        xsrf_cookie_kwargs={"samesite": "Strict", "expires_days": config.session_days},
        template_path=str(PACKAGE_DIR / "templates"),
        ui_methods=pages.UI_METHODS,
        static_path=str(PACKAGE_DIR / "static"),
        default_handler_class=pages.NotFoundHandler,
        websocket_max_message_size=config.max_frame_bytes,
        websocket_ping_interval=WEBSOCKET_PING_INTERVAL_SECONDS,
        websocket_ping_timeout=WEBSOCKET_PING_TIMEOUT_SECONDS,
        debug=config.debug,
        # Autoreload re-executes the process: with an embedded Redis child and
        # forked workers that would leave stray servers on one data dir.
        autoreload=False,
        compiled_template_cache=not config.debug,
        static_hash_cache=not config.debug,
    )
