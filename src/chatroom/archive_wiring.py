"""ArchiveGraph: the part of the controller graph that archiving and retention need.

``chatroom archive`` (archive_process.py, and so ``serve --archiver process``'s
child) builds only this: the repositories, the rooms' epochs, the files that
retention releases and the ``ArchiveController``, with none of the chat, auth
(argon2) or Tornado modules of a serving process. ``wiring.ControllerGraph``
extends it with every other controller, so both build these parts the same way.
"""

from __future__ import annotations

from functools import cached_property

import redis.asyncio as aioredis

from chatroom.config import Config
from chatroom.controllers.archive import ArchiveController
from chatroom.controllers.blocking import BlockingRunner
from chatroom.controllers.files import FilesController, UploadLimits
from chatroom.controllers.rooms import RoomController
from chatroom.metrics import Metrics
from chatroom.models.archive_state import ArchiveState
from chatroom.models.events import EventBus
from chatroom.models.file_storage import open_storage
from chatroom.models.keys import RedisKeys
from chatroom.models.limits import RoomQuota, UploadQuota
from chatroom.models.messages import DurabilityWait, MessageRepository
from chatroom.redis_urls import parse_redis_url

#: Threads for image decoding and file storage I/O, apart from the SQL ones.
FILE_THREADS = 2


def make_files_controller(
    config: Config,
    run_blocking: BlockingRunner,
    rooms: RoomController | None,
    quota: UploadQuota | None = None,
) -> FilesController:
    """The files controller with the storage backend the settings name (SPEC §9).

    The operator's ``chatroom files gc`` builds one with no rooms and no quota.
    """
    return FilesController(
        run_blocking,
        rooms,
        open_storage(config.files_url, config.effective_files_dir),
        quota,
        UploadLimits(config.max_upload_bytes, config.upload_idle_seconds),
        work=BlockingRunner(FILE_THREADS, name="chatroom-files"),
    )


class ArchiveGraph:
    """The archive controller and the repositories it shares; each is built on first use.
    The caller owns the Redis client, the thread pool and the database."""

    def __init__(
        self,
        config: Config,
        redis: aioredis.Redis,
        run_blocking: BlockingRunner,
        wait_for_fsync: DurabilityWait | None = None,
    ) -> None:
        self.config = config
        self.redis = redis
        self.run_blocking = run_blocking
        self._wait_for_fsync = wait_for_fsync

    @cached_property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.config.redis_prefix)

    @cached_property
    def replicas(self) -> int:
        """[SPEC §8] 1 where Redis has replicas (Sentinel, Cluster), else 0."""
        url = self.config.redis_url
        return 1 if url is not None and parse_redis_url(url).replicated else 0

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics()

    @cached_property
    def events(self) -> EventBus:
        return EventBus(
            self.redis,
            self.keys,
            sharded=self.config.sharded_pubsub,
            per_room=self.config.room_pubsub,
        )

    @cached_property
    def messages(self) -> MessageRepository:
        return MessageRepository(
            self.redis,
            self.keys,
            self.config.history_size,
            wait_for_fsync=self._wait_for_fsync,
            events=self.events,
            archive_backlog=self.config.archive_backlog,
        )

    def new_rooms(self) -> RoomController:
        """A ``RoomController`` on this graph's messages, with the room-creation quota."""
        quota = RoomQuota(self.redis, self.keys, self.config.rooms_per_hour)
        return RoomController(self.run_blocking, self.messages, quota)

    @cached_property
    def rooms(self) -> RoomController:
        """The rooms, whose epochs (SPEC §8) the archiver keeps up to date."""
        return self.new_rooms()

    @cached_property
    def files(self) -> FilesController:
        quota = UploadQuota(self.redis, self.keys, self.config.uploads_per_minute)
        return make_files_controller(self.config, self.run_blocking, self.rooms, quota)

    @cached_property
    def archive(self) -> ArchiveController:
        """The archiver loop (one process at a time works), paging back and search."""
        archive = ArchiveController(
            self.run_blocking,
            ArchiveState(self.redis, self.keys, self.events, self.replicas),
            self.messages,
            self.rooms,
            self.metrics,
            retention_days=self.config.retention_days,
        )
        archive.files = self.files  # retention releases the files of what it deletes
        return archive

    def shutdown(self) -> None:
        """Stop the thread pools of the parts that were built (files)."""
        if "files" in self.__dict__:
            self.files.shutdown()
