"""[SPEC §8] ``Membership.epoch_start_reads``: for each of many rooms, the archive's
highest id in it and its highest read marker, all in one query, on every database
(other rooms' rows apart)."""

from __future__ import annotations

from chatroom.models import Membership, Room, User
from chatroom.models.archive_insert import store_batch
from tests.models import test_archive_insert

# A migrated database of each kind with the room ``lobby``: its id.
room_id = test_archive_insert.room_id


def old_message(room: str, message_id: int) -> dict:
    return {"room": room, "id": message_id, "user": "alice", "text": "old", "ts": 1.0}


def test_the_archives_top_and_the_highest_marker_of_the_room_alone(room_id):
    assert Membership.epoch_start_reads([room_id]) == {room_id: (0, 0)}  # nothing yet
    other = Room.ensure_public("other")
    for n, (room, marker) in enumerate([(room_id, 4), (room_id, 9), (other.id, 50)]):
        user = User.create(name=f"u{n}", name_key=f"u{n}", password_hash="x")
        Membership.create(user=user, room=room, last_read_id=marker)
    assert Membership.epoch_start_reads([room_id]) == {room_id: (0, 9)}  # members only
    store_batch(room_id, [old_message("lobby", i) for i in (1, 2, 7)])
    store_batch(other.id, [old_message("other", 60)])
    assert Membership.epoch_start_reads([room_id]) == {room_id: (7, 9)}
    assert Membership.epoch_start_reads([other.id]) == {other.id: (60, 50)}
    Membership.delete().execute()
    assert Membership.epoch_start_reads([room_id]) == {room_id: (7, 0)}  # archived only


def test_many_rooms_each_with_its_own(room_id):
    rooms = [Room.ensure_public(f"r{n}").id for n in range(6)]
    users = [User.create(name=f"u{n}", name_key=f"u{n}", password_hash="x") for n in range(3)]
    for n, room in enumerate(rooms):
        if n % 2:  # odd rooms: archived ids up to 10 * n
            store_batch(room, [old_message(f"r{n}", i) for i in (n, 10 * n)])
        for rank, user in enumerate(users[: n % 3 + 1]):  # 1 to 3 members, the top 100 + n
            Membership.create(user=user, room=room, last_read_id=100 + n - rank)
    gone = max(rooms) + 1000  # no such room: nothing of it
    reads = Membership.epoch_start_reads([*rooms, gone, room_id])
    assert reads == {
        **{room: (10 * n if n % 2 else 0, 100 + n) for n, room in enumerate(rooms)},
        gone: (0, 0),
        room_id: (0, 0),
    }
    assert Membership.epoch_start_reads([]) == {}
