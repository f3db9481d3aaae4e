"""make_app: the Tornado Application and its route table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import tornado.locale
import tornado.web

from chatroom.config import (
    LOCALE_DIR,
    Config,
)
from chatroom.controllers import AuthController, ChatController, HealthController, RoomController
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.blocks import BlockController
from chatroom.controllers.directory import UserDirectory
from chatroom.controllers.files import FilesController
from chatroom.controllers.moderation import ModerationController
from chatroom.controllers.signup import SignupController
from chatroom.controllers.site_admin import SiteAdminController
from chatroom.logs import log_request
from chatroom.views import (
    account_pages,
    admin_pages,
    api,
    archive,
    blocks_api,
    chat_pages,
    files,
    invites_api,
    messages_api,
    room_settings_api,
    users_api,
)
from chatroom.views import moderation_api as moderation
from chatroom.views.base import NotFoundHandler
from chatroom.views.frame_writer import FrameWriter
from chatroom.views.health import HealthHandler
from chatroom.views.pinger import Pinger
from chatroom.views.rfc6455 import check_raw_framing
from chatroom.views.socket import ChatSocketHandler
from chatroom.views.static import StaticHandler
from chatroom.views.ui_methods import UI_METHODS

PACKAGE_DIR = Path(__file__).parent
#: Room names in URLs: public names and ``dm:a:b``; the controllers validate them fully.
ROOM = r"([^/]+)"
#: User names in URLs; the controllers validate them.
USER = r"([^/]+)"


@dataclass(frozen=True)
class Controllers:
    """The controllers one process runs; handlers reach them as ``self.controllers``."""

    auth: AuthController
    rooms: RoomController
    chat: ChatController
    health: HealthController
    files: FilesController | None = None
    archive: ArchiveController | None = None
    # issue 13 (SPEC §6): sign-up control and invites, blocks, the admin page, room moderation
    signup: SignupController | None = None
    blocks: BlockController | None = None
    site_admin: SiteAdminController | None = None
    moderation: ModerationController | None = None
    directory: UserDirectory | None = None  # issue 13: the add-member autocomplete


def make_app(
    config: Config, controllers: Controllers, cookie_secret: str
) -> tornado.web.Application:
    routes = [
        (r"/", chat_pages.ChatPageHandler),
        (r"/rooms", chat_pages.CreateRoomHandler),
        (rf"/rooms/{ROOM}", chat_pages.ChatPageHandler),
        (r"/dm", chat_pages.DirectMessageHandler),
        (r"/locale", account_pages.LocaleHandler),
        (r"/login", account_pages.LoginHandler),
        (r"/register", account_pages.RegisterHandler),
        (r"/logout", account_pages.LogoutHandler),
        (r"/api/register", api.RegisterApiHandler),
        (r"/api/login", api.LoginApiHandler),
        (r"/api/logout", api.LogoutApiHandler),
        (r"/api/me", api.MeApiHandler),
        (r"/api/rooms", api.RoomsApiHandler),
        (rf"/api/rooms/{ROOM}/messages", messages_api.RoomMessagesHandler),  # issue 12
        (rf"/api/rooms/{ROOM}/messages/([0-9]+)", messages_api.MessageHandler),
        (rf"/api/rooms/{ROOM}", room_settings_api.RoomSettingsHandler),  # issue 13: SPEC §6
        (rf"/api/rooms/{ROOM}/members", moderation.MembersHandler),
        (rf"/api/rooms/{ROOM}/members/{USER}", moderation.MemberHandler),
        (rf"/api/rooms/{ROOM}/bans", moderation.BansHandler),
        (rf"/api/rooms/{ROOM}/bans/{USER}", moderation.BanHandler),
        (rf"/api/rooms/{ROOM}/mutes", moderation.MutesHandler),
        (rf"/api/rooms/{ROOM}/mutes/{USER}", moderation.MuteHandler),
        (rf"/api/rooms/{ROOM}/audit", moderation.RoomAuditHandler),
        (r"/api/users", users_api.UsersApiHandler),  # issue 13: usernames by prefix
        (r"/api/search", archive.SearchHandler),
        # issue 13 (SPEC §6): invites, blocks, the site admin page
        (r"/api/invites", invites_api.InvitesApiHandler),
        (r"/api/invites/([^/]+)", invites_api.InviteApiHandler),
        (r"/api/blocks", blocks_api.BlocksApiHandler),
        (r"/api/blocks/([^/]+)", blocks_api.BlockApiHandler),
        (r"/api/admin/users", admin_pages.AdminUsersApiHandler),
        (r"/api/admin/users/([^/]+)", admin_pages.AdminUserApiHandler),
        (r"/admin", admin_pages.AdminPageHandler),
        (rf"/api/rooms/{ROOM}/files", files.UploadHandler),
        (r"/files/([A-Za-z0-9_-]+)(?:/[^/]*)?", files.FileHandler),
        (r"/api/.*", api.ApiNotFoundHandler),
        (r"/healthz", HealthHandler),
        (r"/ws", ChatSocketHandler),
    ]
    # The fan-out writes pre-built frames to the socket's stream: refuse what breaks them.
    check_raw_framing(ChatSocketHandler)
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
        ui_methods=[UI_METHODS, files.UI_METHODS],  # files: file_view
        static_path=str(PACKAGE_DIR / "static"),
        static_handler_class=StaticHandler,
        log_function=log_request,
        default_handler_class=NotFoundHandler,
        websocket_max_message_size=config.max_frame_bytes,
        # Sockets are pinged by one timer per process, not a Tornado task per socket.
        pinger=Pinger(config.ping_interval, config.ping_timeout),
        debug=config.debug,
        # Autoreload re-executes the process: with an embedded Redis child and
        # forked workers that would leave stray servers on one data dir.
        autoreload=False,
        compiled_template_cache=not config.debug,
        static_hash_cache=not config.debug,
    )
