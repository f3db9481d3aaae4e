"""[SPEC §8] ``Membership.epoch_start_reads``: the archive's highest id in a room and
its highest read marker, in one query, on every database (other rooms' rows apart)."""

from __future__ import annotations

from chatroom.models import Membership, Room, User
from chatroom.models.archive_insert import store_batch
from tests.models import test_archive_insert

# A migrated database of each kind with the room ``lobby``: its id.
room_id = test_archive_insert.room_id


def old_message(room: str, message_id: int) -> dict:
    return {"room": room, "id": message_id, "user": "alice", "text": "old", "ts": 1.0}


def test_the_archives_top_and_the_highest_marker_of_the_room_alone(room_id):
    assert Membership.epoch_start_reads(room_id) == (0, 0)  # no message, no member
    other = Room.ensure_public("other")
    for n, (room, marker) in enumerate([(room_id, 4), (room_id, 9), (other.id, 50)]):
        user = User.create(name=f"u{n}", name_key=f"u{n}", password_hash="x")
        Membership.create(user=user, room=room, last_read_id=marker)
    assert Membership.epoch_start_reads(room_id) == (0, 9)  # members, nothing archived
    store_batch(room_id, [old_message("lobby", i) for i in (1, 2, 7)])
    store_batch(other.id, [old_message("other", 60)])
    assert Membership.epoch_start_reads(room_id) == (7, 9)
    assert Membership.epoch_start_reads(other.id) == (60, 50)
    Membership.delete().execute()
    assert Membership.epoch_start_reads(room_id) == (7, 0)  # archived, no member
