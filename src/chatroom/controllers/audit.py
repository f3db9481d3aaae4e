"""AuditLog: the record of every moderation action, written and read off the event loop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from chatroom.controllers.blocking import BlockingRunner
from chatroom.models.audit import OPERATOR, AuditEntry

#: The actions the log records; the names ``chatroom audit`` and the API show.
ACTIONS = frozenset(
    {
        "promote",
        "demote",
        "disable",
        "enable",
        "kick",
        "ban",
        "unban",
        "mute",
        "unmute",
        "role",
        "delete_message",
        "delete_room",
        "add_member",
        "room_settings",
        "invite_create",
        "invite_revoke",
    }
)


@dataclass(frozen=True)
class AuditRecord:
    """One logged action as the controllers hand it out: plain data, safe across threads."""

    id: int
    created: datetime
    actor: str
    action: str
    target: str | None
    room: str | None
    detail: str

    def public(self) -> dict:
        created = self.created.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")
        return {
            "id": self.id,
            "created": created,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "room": self.room,
            "detail": self.detail,
        }


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        entry.id,
        entry.created,
        entry.actor,
        entry.action,
        entry.target,
        entry.room,
        entry.detail,
    )


class AuditLog:
    """Records moderation actions in SQL and lists them newest first.

    A record is written after the action succeeded; an action whose record could
    not be written still happened (the database error reaches the caller, who
    sees a 503, and the operator's log has it).
    """

    def __init__(self, run: BlockingRunner) -> None:
        self._run = run

    async def record(
        self,
        actor: str | None,
        action: str,
        target: str | None = None,
        room: str | None = None,
        detail: str = "",
    ) -> AuditRecord:
        """Log ``action`` by ``actor`` (a user name; None: the operator's shell)."""
        if action not in ACTIONS:
            raise ValueError(f"not an audited action: {action!r}")
        entry = await self._run(
            AuditEntry.record, actor or OPERATOR, action, target, room, detail[:200]
        )
        return _record(entry)

    async def newest(
        self, room: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[AuditRecord]:
        """The newest ``limit`` entries (of one ``room``, or all), newest first."""
        entries = await self._run(AuditEntry.newest, room, limit, before)
        return [_record(entry) for entry in entries]
