"""Server-to-client frames of the WebSocket protocol (SPEC §3), encoded to bytes once."""

from __future__ import annotations

import orjson

from chatroom.controllers.errors import ChatError, RateLimitedError
from chatroom.models import HistoryPage

#: The frame types a client may send, and those the server sends (SPEC §3).
CLIENT_FRAME_TYPES = ("join", "leave", "send", "typing", "read", "ping", "edit", "delete", "react")
SERVER_FRAME_TYPES = (
    *("hello", "joined", "message", "ack", "presence", "typing", "error", "pong"),
    *("edited", "deleted", "reaction", "updated"),  # issue 12: SPEC §5 (updated: extension)
    "removed",  # issue 13: SPEC §6
    "added",  # issue 13: an extension of SPEC §6
)

PONG = b'{"type":"pong"}'


def encode(frame: dict) -> bytes:
    return orjson.dumps(frame)


def hello(user: str, rooms: list[dict]) -> bytes:
    return encode({"type": "hello", "user": user, "rooms": rooms})


def joined(
    page: HistoryPage, online: list[str], updates: bool = False, reset: bool = False
) -> bytes:
    """The ``joined`` frame; ``updates`` (SPEC §5 catch-up) when the join had ``since_rev``;
    ``reset`` (SPEC §8) when the client's copy of the room belongs to another epoch."""
    # The history items are stored pre-encoded; splice them in rather than
    # decoding and re-encoding up to history_size messages per join.
    extra = b"" if page.rev is None else b',"rev":%d' % page.rev
    if updates:
        extra += b',"updates":[' + b",".join(page.updates) + b"]"
    if page.epoch is not None:
        extra += b',"epoch":' + orjson.dumps(page.epoch)
    if reset:
        extra += b',"reset":true'
    return b"".join(
        (
            b'{"type":"joined","room":',
            orjson.dumps(page.room),
            b',"messages":[',
            b",".join(page.items),
            b'],"gap":',
            b"true" if page.gap else b"false",
            b',"missing":%d,"online":' % page.missing,
            orjson.dumps(online),
            extra,
            b"}",
        )
    )


def ack(client_id: str | None, message_id: int, room: str) -> bytes:
    return encode({"type": "ack", "client_id": client_id, "id": message_id, "room": room})


def presence(room: str, user: str, state: str) -> bytes:
    return encode({"type": "presence", "room": room, "user": user, "state": state})


def typing(room: str, user: str) -> bytes:
    return encode({"type": "typing", "room": room, "user": user})


def removed(room: str, reason: str) -> bytes:
    """[issue 13] The user lost the room: ``kicked``, ``banned``, ``deleted`` (or ``left``)."""
    return encode({"type": "removed", "room": room, "reason": reason})


def added(room: str, private: bool, role: str, last_id: int) -> bytes:
    """[issue 13, an extension of SPEC §6] The user was made a member of ``room``
    (``last_id``: its newest message then, the new member's read mark)."""
    frame = {"type": "added", "room": room, "private": private, "role": role}
    return encode({**frame, "last_id": last_id})


def error(exc: ChatError, room: object = None, client_id: object = None) -> bytes:
    frame: dict = {"type": "error", "code": exc.code, "message": exc.message}
    if isinstance(room, str):
        frame["room"] = room
    if isinstance(client_id, str):
        frame["client_id"] = client_id
    if isinstance(exc, RateLimitedError):
        frame["retry_after"] = round(exc.retry_after, 3)
    return encode(frame)


def current_state(room: str, item: dict) -> bytes:
    """The frame that brings a client's copy of message ``item`` up to date (SPEC §5,
    after changes it missed): ``deleted``, or ``updated`` with the whole item."""
    if item.get("deleted"):
        return encode({"type": "deleted", "room": room, "id": item["id"], "rev": item["rev"]})
    return encode({"type": "updated", "room": room, "message": item, "rev": item["rev"]})
