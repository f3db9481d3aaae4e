"""User-facing failures, each carrying its protocol error ``code`` and an HTTP status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions


class ChatError(Exception):
    """Base of every error a user can cause; ``code`` is the stable protocol code."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(ChatError):
    """Malformed input: not JSON, unknown type, a missing or mistyped field, a bad name."""


class TooLongError(ChatError):
    """A message text over the length limit."""

    code = "too_long"


class TooLargeError(ChatError):
    """An upload over ``--max-upload-bytes``."""

    code = "too_large"
    status = 413


class UnauthorizedError(ChatError):
    """No credentials, or wrong ones."""

    code = "unauthorized"
    status = 401


class ForbiddenError(ChatError):
    """Signed in, but not allowed (someone else's direct messages)."""

    code = "forbidden"
    status = 403


class NotFoundError(ChatError):
    """No such room (or user)."""

    code = "not_found"
    status = 404


class ConflictError(ChatError):
    """The name is taken."""

    code = "conflict"
    status = 409


class RateLimitedError(ChatError):
    """Too many requests; try again after ``retry_after`` seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyConnectionsError(ChatError):
    """The user holds the most sockets allowed; the new socket is closed with 1008."""

    code = "rate_limited"
    status = 429
    #: The WebSocket close code and reason the refused socket gets.
    close_code = 1008
    close_reason = "too many connections"


class UnavailableError(ChatError):
    """Storage is down: nothing was stored; retry later."""

    code = "unavailable"
    status = 503


@contextlib.contextmanager
def storage_guard() -> Iterator[None]:
    """Turn a Redis outage into ``UnavailableError`` (nothing stored, retry later)."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise UnavailableError("storage is unavailable; nothing was stored, retry later") from exc
