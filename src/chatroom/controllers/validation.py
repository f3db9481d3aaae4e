"""The shape rules of SPEC §2/§3: names, passwords, message texts, ids."""

from __future__ import annotations

import re

from chatroom.controllers.errors import BadRequestError, TooLongError

# \Z, not $: "$" also matches before a trailing newline, which would admit "alice\n".
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")
ROOM_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
DM_NAME_RE = re.compile(r"^dm:([a-z0-9_.-]{1,32}):([a-z0-9_.-]{1,32})\Z")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
MAX_USERNAME_CHARS = 32
MAX_CLIENT_ID_CHARS = 64
MAX_TOPIC_CHARS = 200
MAX_ID = 2**53
PASSWORD_MIN, PASSWORD_MAX = 8, 256


def has_lone_surrogate(value: str) -> bool:
    """Whether ``value`` holds a lone surrogate, which no UTF-8 encoder accepts."""
    return _SURROGATE_RE.search(value) is not None


def username(value: object) -> str:
    if not isinstance(value, str) or not USERNAME_RE.match(value):
        raise BadRequestError("username must be 1-32 letters, digits, '_', '.' or '-'")
    return value


def password(value: object) -> str:
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise BadRequestError(f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    if "\x00" in value or _SURROGATE_RE.search(value):
        raise BadRequestError("password must not contain NUL or lone surrogates")
    return value


def room_name(value: object) -> str:
    """A public room name or a direct-message room name."""
    if isinstance(value, str) and (ROOM_NAME_RE.match(value) or DM_NAME_RE.match(value)):
        return value
    raise BadRequestError("room name must match ^[a-z0-9][a-z0-9_-]{0,63}$ (or be dm:a:b)")


def public_room_name(value: object) -> str:
    if not isinstance(value, str) or not ROOM_NAME_RE.match(value):
        raise BadRequestError("room name must match ^[a-z0-9][a-z0-9_-]{0,63}$")
    return value


def topic(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TOPIC_CHARS:
        raise BadRequestError(f"topic must be text of at most {MAX_TOPIC_CHARS} characters")
    if "\x00" in value or _SURROGATE_RE.search(value):
        raise BadRequestError("topic must not contain NUL or lone surrogates")
    return value


def message_text(value: object, max_chars: int) -> str:
    """Text is kept verbatim: nothing stripped, control characters allowed, NUL refused."""
    if not isinstance(value, str) or not value:
        raise BadRequestError("text must be a non-empty string")
    if len(value) > max_chars:
        raise TooLongError(f"text is longer than {max_chars} characters")
    if "\x00" in value or _SURROGATE_RE.search(value):
        raise BadRequestError("text must not contain NUL or lone surrogates")
    return value


def client_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CLIENT_ID_CHARS:
        raise BadRequestError(f"client_id must be a string of 1-{MAX_CLIENT_ID_CHARS} characters")
    if "\x00" in value or _SURROGATE_RE.search(value):
        raise BadRequestError("client_id must not contain NUL or lone surrogates")
    return value


#: [SPEC §8] The longest epoch a client may send back (the server makes 16 characters).
MAX_EPOCH_CHARS = 64


def epoch(value: object) -> str | None:
    """A room's epoch as a client sends it back with ``join`` (any string it was given)."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EPOCH_CHARS:
        raise BadRequestError(f"epoch must be a string of 1-{MAX_EPOCH_CHARS} characters")
    return value


def message_id(value: object, field: str = "id") -> int:
    # bool is an int subclass in Python; true/false are not ids.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise BadRequestError(f"{field} must be an integer in 0..2^53")
    return value


def dm_room_name(a: str, b: str) -> str:
    """The direct-message room of two users: ``dm:<a>:<b>``, lowercased and sorted.

    The one rule for the name: pages link to it, ``RoomController.open`` accepts
    only the name it returns."""
    first, second = sorted((a.lower(), b.lower()))
    return f"dm:{first}:{second}"
