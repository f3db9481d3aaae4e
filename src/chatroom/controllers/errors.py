"""User-facing failures, each carrying its protocol error ``code`` and an HTTP status.

``ERROR_STATUS`` is the one catalogue of protocol error codes: every code the
server answers with and its HTTP status. The exceptions take their status from
it, the views map Tornado's own HTTP errors back to a code with
``code_for_status``, and views/strings.py translates each code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions

#: Every protocol error code and the HTTP status it is answered with. The first code
#: listed for a status is the one an HTTP error of that status (Tornado's own 404,
#: 405, 413, ...) carries.
ERROR_STATUS: dict[str, int] = {
    "bad_request": 400,
    "too_long": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "internal": 500,
    "unavailable": 503,
}
#: The code of a status that no catalogued code has (say a 408 from Tornado).
UNKNOWN_CODE = "error"
#: Status -> code, read backwards so that the first code listed for a status wins.
_STATUS_CODE = {status: code for code, status in reversed(ERROR_STATUS.items())}


def code_for_status(status: int) -> str:
    """The protocol error code of an HTTP error status (``"error"`` if none has it)."""
    return _STATUS_CODE.get(status, UNKNOWN_CODE)


class ChatError(Exception):
    """Base of every error a user can cause; ``code`` is the stable protocol code.

    ``status`` comes from ``ERROR_STATUS``; a subclass with an uncatalogued code is
    refused when it is defined.
    """

    code = "bad_request"
    status = ERROR_STATUS[code]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code not in ERROR_STATUS:
            raise TypeError(f"{cls.__name__}.code {cls.code!r} is not in ERROR_STATUS")
        cls.status = ERROR_STATUS[cls.code]

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


class ForbiddenError(ChatError):
    """Signed in, but not allowed (someone else's direct messages)."""

    code = "forbidden"


class NotFoundError(ChatError):
    """No such room (or user)."""

    code = "not_found"


class ConflictError(ChatError):
    """The name is taken."""

    code = "conflict"


class RateLimitedError(ChatError):
    """Too many requests; try again after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyConnectionsError(ChatError):
    """The user holds the most sockets allowed; the new socket is closed with 1008."""

    code = "rate_limited"
    #: The WebSocket close code and reason the refused socket gets.
    close_code = 1008
    close_reason = "too many connections"


class UnavailableError(ChatError):
    """Storage is down: nothing was stored; retry later."""

    code = "unavailable"


#: The errors of a Redis that does not answer, or (SPEC §8) of a Sentinel or Cluster
#: between two topologies: no master for the slot yet (CLUSTERDOWN), a slot moving
#: (TRYAGAIN), a MOVED the cluster client could not follow. None of them ran the
#: command: nothing was stored.
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.AskError,
    redis.exceptions.RedisClusterException,
)


@contextlib.contextmanager
def storage_guard() -> Iterator[None]:
    """Turn a Redis outage into ``UnavailableError`` (nothing stored, retry later)."""
    try:
        yield
    except REDIS_UNAVAILABLE as exc:
        raise UnavailableError("storage is unavailable; nothing was stored, retry later") from exc
