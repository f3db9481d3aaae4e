"""build_controllers: the one object graph of controllers and the repositories they share.

A serving process (``server.ChatServer``), the operator commands
(``operator_commands``) and the controller tests (``tests/controllers``) all build
their controllers here, from a ``Config``, so that each runs the same graph. The
caller owns what outlives the graph: the Redis client, the thread pool and the
database, which it opens before and closes after. The archive's part of the graph
(``archive_wiring.ArchiveGraph``) is what ``chatroom archive`` builds alone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import argon2
import redis.asyncio as aioredis

from chatroom.app import Controllers
from chatroom.archive_wiring import ArchiveGraph
from chatroom.config import MAX_HISTORY_SIZE, Config
from chatroom.controllers import (
    AuthController,
    BlockingRunner,
    ChatController,
    HealthController,
    RoomController,
    SendLimits,
)
from chatroom.controllers.admin import AdminController
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.audit import AuditLog
from chatroom.controllers.auth import PASSWORD_HASHER
from chatroom.controllers.blocks import BlockController
from chatroom.controllers.directory import UserDirectory
from chatroom.controllers.limits import (
    BLOCKS_LIMIT,
    INVITES_LIMIT,
    MODERATION_LIMIT,
    ConnectionCaps,
)
from chatroom.controllers.mentions import MentionResolver
from chatroom.controllers.message_changes import MessageChanges
from chatroom.controllers.moderation import ModerationController
from chatroom.controllers.passwords import PasswordPool
from chatroom.controllers.readmarks import ReadMarkerBuffer
from chatroom.controllers.room_rules import RoomRules
from chatroom.controllers.signup import SignupController
from chatroom.controllers.site_admin import SiteAdminController
from chatroom.models import AuthThrottle, MessageRepository, PresenceRepository, RedisKeys
from chatroom.models.archive_state import ArchiveState
from chatroom.models.limits import ActionQuota, SendRate
from chatroom.models.message_changes import MessageChangeRepository
from chatroom.models.messages import DurabilityWait
from chatroom.models.room_rules import RoomRulesRepository

#: The largest --history-size: the operator's exports read everything a room
#: retains, whatever the server's own setting.
EXPORT_HISTORY_SIZE = MAX_HISTORY_SIZE


class ControllerGraph(ArchiveGraph):
    """The controllers of one process, the operator's ``AdminController``, and the
    repositories and metrics they share; each is built on first use (an operator
    command builds no ``AuthController``, whose start-up hash costs ~0.1 s)."""

    def __init__(
        self,
        config: Config,
        redis: aioredis.Redis,
        run_blocking: BlockingRunner,
        wait_for_fsync: DurabilityWait | None,
        hasher: argon2.PasswordHasher,
        presence: Callable[[aioredis.Redis, RedisKeys], PresenceRepository],
    ) -> None:
        super().__init__(config, redis, run_blocking, wait_for_fsync)
        self._hasher = hasher
        self._presence = presence

    @cached_property
    def presence(self) -> PresenceRepository:
        return self._presence(self.redis, self.keys)

    @cached_property
    def rooms(self) -> RoomController:
        rooms = self.new_rooms()
        rooms.mention_counts = self.message_change_repo.mention_counts  # issue 12
        rooms.direct_gate = self.blocks.check_direct  # issue 13: blocks close DMs
        return rooms

    @cached_property
    def blocks(self) -> BlockController:
        """Users blocking users (SPEC §6)."""
        return BlockController(self.run_blocking, self.events, self._quota("blocks", BLOCKS_LIMIT))

    def _quota(self, kind: str, limit: tuple[int, int]) -> ActionQuota:
        """[issue 13] A per-user bucket of one kind of action, in Redis."""
        return ActionQuota(self.redis, self.keys, kind, *limit)

    @cached_property
    def signup(self) -> SignupController:
        """Registration under --registration, and invite codes (SPEC §6)."""
        quota = self._quota("invites", INVITES_LIMIT)
        return SignupController(self.run_blocking, self.auth, self.config.registration, quota)

    @cached_property
    def site_admin(self) -> SiteAdminController:
        """The admin page's user actions (SPEC §6)."""
        return SiteAdminController(self.admin)

    @cached_property
    def message_change_repo(self) -> MessageChangeRepository:
        config = self.config
        return MessageChangeRepository(self.redis, self.keys, config.history_size, self.events)

    @cached_property
    def chat(self) -> ChatController:
        config = self.config
        chat = ChatController(
            self.rooms,
            self.messages,
            self.presence,
            SendLimits(config.max_message_chars, config.send_burst, config.send_per_second),
            ReadMarkerBuffer(self.run_blocking),
            self.metrics,
            ConnectionCaps(config.max_sockets_per_user, config.joins_per_minute),
            files=self.files,  # sends may carry uploaded files
            changes=self.message_changes,  # issue 12: edit, delete, react, reply
            rules=self.room_rules,  # issue 13: bans, mutes, read-only
        )
        chat.send_retry_seconds = config.effective_redis_failover_timeout  # SPEC §8
        return chat

    @cached_property
    def room_rules(self) -> RoomRules:
        """[issue 13] The Redis copy of rooms' rules that the scripts check."""
        return RoomRules(self.run_blocking, RoomRulesRepository(self.redis, self.keys), self.events)

    @cached_property
    def moderation(self) -> ModerationController:
        """[issue 13] Members, roles, bans, mutes, room settings and deletes (SPEC §6)."""
        return ModerationController(
            self.run_blocking,
            self.room_rules,
            self.messages,
            AuditLog(self.run_blocking),
            self._quota("moderation", MODERATION_LIMIT),
        )

    @cached_property
    def message_changes(self) -> MessageChanges:
        """Edits, deletes, reactions, replies and mentions (SPEC §5)."""
        config = self.config
        changes = MessageChanges(
            self.message_change_repo,
            SendRate(config.send_burst, config.send_per_second),
            config.max_message_chars,
            MentionResolver(self.run_blocking),
            edit_window=config.edit_window,
        )
        changes.archive = self.archive
        changes.files = self.files
        changes.rules = self.room_rules  # issue 13
        changes.may_moderate = self.moderation.may_moderate
        changes.audit = AuditLog(self.run_blocking)
        return changes

    @cached_property
    def passwords(self) -> PasswordPool:
        return PasswordPool(self.config.hash_threads, self._hasher)

    @cached_property
    def auth(self) -> AuthController:
        config = self.config
        throttle = AuthThrottle(
            self.redis, self.keys, per_address=(config.auth_burst, config.auth_per_minute / 60)
        )
        return AuthController(
            self.run_blocking,
            self.passwords,
            throttle=throttle,
            session_days=config.session_days,
            events=self.events,
        )

    @cached_property
    def health(self) -> HealthController:
        return HealthController(self.run_blocking, self.messages, archive=self.archive)

    @cached_property
    def admin(self) -> AdminController:
        exports = MessageRepository(self.redis, self.keys, EXPORT_HISTORY_SIZE, events=self.events)
        archive = ArchiveController(self.run_blocking, ArchiveState(self.redis, self.keys), exports)
        return AdminController(
            self.run_blocking, exports, self.presence, self._hasher, archive=archive
        )

    def shutdown(self) -> None:
        """Stop the thread pools of the parts that were built (passwords, files)."""
        if "passwords" in self.__dict__:
            self.passwords.shutdown()
        super().shutdown()

    def app_controllers(self) -> Controllers:
        """What ``make_app`` takes: the controllers the handlers reach."""
        return Controllers(
            auth=self.auth,
            rooms=self.rooms,
            chat=self.chat,
            health=self.health,
            files=self.files,
            archive=self.archive,
            signup=self.signup,
            blocks=self.blocks,
            site_admin=self.site_admin,
            moderation=self.moderation,
            directory=UserDirectory(self.run_blocking),
        )


def build_controllers(
    config: Config,
    redis: aioredis.Redis,
    run_blocking: BlockingRunner,
    *,
    wait_for_fsync: DurabilityWait | None = None,
    hasher: argon2.PasswordHasher = PASSWORD_HASHER,
    presence: Callable[[aioredis.Redis, RedisKeys], PresenceRepository] = PresenceRepository,
) -> ControllerGraph:
    """Every controller of one process on ``redis`` and ``run_blocking``, set by ``config``.

    ``wait_for_fsync``: what each send waits for under ``--durability strict`` (see
    ``storage.strict_durability_wait``). ``hasher`` and ``presence`` are
    what tests replace (cheap argon2 parameters, a presence repository that pauses).
    """
    return ControllerGraph(config, redis, run_blocking, wait_for_fsync, hasher, presence)
