"""Every Redis key and channel name chatroom uses, in one place.

All keys of one room share the hash tag ``{room}`` so that a room's keys live in
one Redis Cluster slot and the send script stays single-slot.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


def _digest(text: str) -> str:
    """A fixed-length, colon- and brace-free stand-in for a variable key part.

    Whatever a client sent (a username with ``:``, ``{``, ``*``, 10 kB of text) ends
    up as 32 hex digits, so no value can reach into another key kind's name.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (SCAN MATCH)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True)
class RedisKeys:
    """Builds key names under a configurable prefix (``chatroom`` by default)."""

    prefix: str = "chatroom"

    def seq(self, room: str) -> str:
        """The room's message counter: the id of its newest message."""
        return f"{self.prefix}:{{{room}}}:seq"

    def log(self, room: str) -> str:
        """The room's retained messages, oldest first, each stored as its ``message`` frame."""
        return f"{self.prefix}:{{{room}}}:log"

    def archived(self, room: str) -> str:
        """The room's archive watermark: every id up to it is in the SQL archive."""
        return f"{self.prefix}:{{{room}}}:archived"

    def rev(self, room: str) -> str:
        """The room's change counter (SPEC §5): raised by every message, edit, delete, reaction."""
        return f"{self.prefix}:{{{room}}}:rev"

    def epoch(self, room: str) -> str:
        """The room's epoch (SPEC §8): a new one each time Redis lost the room's history."""
        return f"{self.prefix}:{{{room}}}:epoch"

    def orphans(self, room: str) -> str:
        """Messages a new epoch took out of the room's log before the archive had them:
        the archiver copies them to SQL (SPEC §8)."""
        return f"{self.prefix}:{{{room}}}:orphans"

    def stale_reads(self, room: str) -> str:
        """Where the room's newest epoch started (SPEC §8): read markers above it name
        messages of a lost history; the archiver lowers them and deletes the key."""
        return f"{self.prefix}:{{{room}}}:stale-reads"

    def sync(self, room: str) -> str:
        """Written by the archiver before it waits for a replica (SPEC §8): WAIT counts
        the connection's writes."""
        return f"{self.prefix}:{{{room}}}:sync"

    def changes(self, room: str) -> str:
        """Sorted set of the room's changed messages: id scored by the rev of its last change."""
        return f"{self.prefix}:{{{room}}}:changes"

    def archived_change(self, room: str, message_id: int) -> str:
        """A changed message that is only in the SQL archive: its new frame until SQL has
        it, then (for a while) the rev SQL has, which tells a stale read of SQL."""
        return f"{self.prefix}:{{{room}}}:archived-change:{int(message_id)}"

    def mentions(self, room: str, user_key: str) -> str:
        """Sorted set of the ids of the room's messages that mention a user (scored by id)."""
        return f"{self.prefix}:{{{room}}}:mentions:{_digest(user_key)}"

    def client_id(self, room: str, user_key: str, client_id: str) -> str:
        """Remembers which id a user's ``client_id`` was stored under (retry dedupe)."""
        return f"{self.prefix}:{{{room}}}:cid:{user_key}:{client_id}"

    def send_rate(self, room: str, user_key: str) -> str:
        """A user's send token bucket in this room (in the room's slot, for the send script)."""
        return f"{self.prefix}:{{{room}}}:rate:{user_key}"

    def rules(self, room: str, room_id: int) -> str:
        """[issue 13] Hash of the room's rules (bans, mutes, staff, read-only) that the
        send, edit and react scripts check; the SQL id keeps a room made again under
        the same name from inheriting them."""
        return f"{self.prefix}:{{{room}}}:rules:{int(room_id)}"

    def present(self, room: str) -> str:
        """Hash of the room's online users: user -> the tokens of the processes holding them."""
        return f"{self.prefix}:{{{room}}}:present"

    # The throttles' keys: each kind has its own fixed segment, and every variable
    # part (an address, an account name) is a digest, never the raw text. The
    # per-account keys share the hash tag of the account, so one script may use them.

    def auth_address(self, address: str) -> str:
        """Login/register attempts of one client address (or IPv6 /64): a token bucket."""
        return f"{self.prefix}:auth-addr:{_digest(address)}"

    def lookup_address(self, address: str) -> str:
        """Username lookups (``/dm?user=``) of one client address: a token bucket."""
        return f"{self.prefix}:lookup-addr:{_digest(address)}"

    def auth_failures(self, account: str) -> str:
        """Failed logins of one (valid) account name: the fast token bucket."""
        return f"{self.prefix}:auth-acct:{{{_digest(account)}}}:fail"

    def auth_slow(self, account: str) -> str:
        """Failed logins of one account from any address: the slow token bucket."""
        return f"{self.prefix}:auth-acct:{{{_digest(account)}}}:slow"

    def auth_known(self, account: str) -> str:
        """Sorted set of address digests that logged in to the account, scored by expiry."""
        return f"{self.prefix}:auth-acct:{{{_digest(account)}}}:known"

    def auth_failed(self, account: str, address: str) -> str:
        """How often one address failed at one account recently."""
        return f"{self.prefix}:auth-acct:{{{_digest(account)}}}:failed:{_digest(address)}"

    @staticmethod
    def address_tag(address: str) -> str:
        """The digest of an address as the ``auth_known`` set stores it."""
        return _digest(address)

    def room_creations(self, user_id: int) -> str:
        """Rooms one user created lately: a token bucket."""
        return f"{self.prefix}:room-create:{int(user_id)}"

    def uploads(self, user_id: int) -> str:
        """Files one user uploaded lately: a token bucket (``--uploads-per-minute``)."""
        return f"{self.prefix}:uploads:{int(user_id)}"

    def actions(self, kind: str) -> str:
        """The prefix of one kind of users' action buckets (``blocks``, ``invites``,
        ``moderation``; ``:<user id>`` follows): token buckets."""
        if not kind.isidentifier():
            raise ValueError(f"not an action kind: {kind!r}")
        return f"{self.prefix}:actions:{kind}"

    def user_sockets(self, user_id: int) -> str:
        """Hash of one user's open sockets: process token -> how many it holds."""
        return f"{self.prefix}:socket-counts:{int(user_id)}"

    def room_keys(self, room: str) -> str:
        """A SCAN pattern matching every key of the room (history, counter, dedupe, ...)."""
        return _glob_escape(f"{self.prefix}:{{{room}}}:") + "*"

    def processes(self) -> str:
        """Hash of the registered serving processes: process token -> ``pid@host``."""
        return f"{self.prefix}:processes"

    def process_alive(self, token: str) -> str:
        """One process's liveness: its connection count, expiring unless renewed."""
        return f"{self.prefix}:process:{{{token}}}:alive"

    def process_index(self, token: str) -> str:
        """Set of the rooms (``r:<room>``) and users (``u:<id>``) a process wrote
        presence or socket counts for: what a sweep of the dead process visits."""
        return f"{self.prefix}:process:{{{token}}}:index"

    def process_sweep(self, token: str) -> str:
        """Who sweeps a dead process now (a short lock)."""
        return f"{self.prefix}:process:{{{token}}}:sweep"

    def archive_lock(self, name: str) -> str:
        """A lock one process across all hosts holds (``archiver``, ``retention``)."""
        return f"{self.prefix}:lock:{name}"

    def access_version(self) -> str:
        """[issue 13] Raised by every change of who may use a room (a kick, a ban): a
        process that missed the event drops the access checks it made before."""
        return f"{self.prefix}:access-version"

    def events(self) -> str:
        """The pub/sub channel every process listens to: the control events, and with
        ``--pubsub-channels one`` (or a Cluster's classic pub/sub) every event."""
        return f"{self.prefix}:events"

    def room_events(self, room: str) -> str:
        """The room's own channel: [issue 17] with one Redis or Sentinel a classic one;
        [issue 16] in a Cluster a shard channel (``SPUBLISH``/``SSUBSCRIBE``) in the
        room's slot, so its scripts publish on the node that holds its keys."""
        return f"{self.prefix}:{{{room}}}:events"
