"""The small protocol through which controllers reach a live client connection."""

from __future__ import annotations

from typing import Protocol

from chatroom.controllers.accounts import Account


class Connection(Protocol):
    """A client socket as the controllers see it (the WebSocket handler implements it)."""

    conn_id: str
    account: Account

    def deliver(self, frame: bytes) -> None:
        """Queue one encoded frame for this client; never blocks."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection with a WebSocket close code."""

    def abort(self) -> None:
        """Drop the connection without waiting for the client's answer to ``close``."""
