"""Unit tests of the event envelope that every process publishes on the one Redis event
channel: ``encode_envelope``/``decode_envelope`` and ``Event.control``."""

from __future__ import annotations

import orjson
import pytest

from chatroom.models.events import CONTROL_ROOM, Event, decode_envelope, encode_envelope

MESSAGE = b'{"type":"message","room":"lobby","id":7,"user":"bob","text":"hi","ts":"1.5"}'


@pytest.mark.parametrize(
    ("room", "message_id", "exclude_user", "frame"),
    [
        ("lobby", 7, "", MESSAGE),
        ("lobby", 1, "bob", b'{"type":"typing","room":"lobby","user":"Bob"}'),
        ("dm:alice:bob", 0, "", b'{"type":"presence"}'),
        ("caf\u00e9", 2**53, "\u5f20\u4e09", b"{}"),  # UTF-8 room and user names
        (CONTROL_ROOM, 0, "", b'{"type":"control","action":"room_deleted","room":"x"}'),
        # The frame is the rest of the payload: newlines and any bytes survive.
        ("lobby", 3, "", b'{"text":"a\nb"}\n\n\n'),
        ("lobby", 3, "", b"\xff\xfe\x00not even utf-8"),
        ("lobby", 3, "", b""),
        ("lobby", 3, "", b"x" * 1_000_000),
    ],
)
def test_round_trip(room: str, message_id: int, exclude_user: str, frame: bytes) -> None:
    event = decode_envelope(encode_envelope(room, message_id, exclude_user, frame))
    assert event == Event(room, message_id, exclude_user, frame)


@pytest.mark.parametrize(
    ("args", "payload"),
    [
        (("lobby", 7, "bob", b"{}"), b"lobby\n7\nbob\n{}"),
        (("lobby", 0, "", b"{}"), b"lobby\n\n\n{}"),  # id 0 (not a message) is left empty
        ((CONTROL_ROOM, 0, "", b"{}"), b"\n\n\n{}"),
        (("\u623f", 1, "", b"{}"), "\u623f\n1\n\n{}".encode()),
    ],
)
def test_wire_format(args: tuple, payload: bytes) -> None:
    """Fixed: processes of two versions share the channel during a rolling upgrade."""
    assert encode_envelope(*args) == payload


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"lobby",
        b"lobby\n",
        b"lobby\n7",
        b"lobby\n7\n",
        b"lobby\n7\nbob",  # truncated before the frame's separator
        b"lobby\nseven\n\n{}",
        b"lobby\n1.5\n\n{}",
        b"lobby\n0x10\n\n{}",
        b"lobby\n1e3\n\n{}",
        b"lobby\n\xff\n\n{}",
        b"lobby\n" + b"9" * 5000 + b"\n\n{}",  # past Python's limit on digits
        b"\xff\xfe\n1\n\n{}",  # a room that is not UTF-8
        b"lobby\n1\n\xc3\n{}",  # a truncated UTF-8 sequence in the user
        b'{"type":"message","room":"lobby"}',  # a bare frame, published by someone else
    ],
)
def test_a_malformed_payload_raises_value_error(payload: bytes) -> None:
    """The listener skips (and logs) exactly ValueError: nothing else may escape."""
    with pytest.raises(ValueError):
        decode_envelope(payload)


@pytest.mark.parametrize(
    ("frame", "control"),
    [
        (
            b'{"type":"control","action":"room_deleted","room":"x"}',
            {"type": "control", "action": "room_deleted", "room": "x"},
        ),
        (b'{"action":"user_disabled","user_id":3}', {"action": "user_disabled", "user_id": 3}),
        (b"{}", {}),
        # Anything that is not a JSON object is an empty control: ignored, never an error.
        (b"", {}),
        (b"not json", {}),
        (b'{"action":', {}),  # truncated
        (b"\xff\xfe", {}),
        (b"[1, 2]", {}),
        (b'"room_deleted"', {}),
        (b"42", {}),
        (b"null", {}),
        (b"true", {}),
        (b"NaN", {}),
        (b'{"a":1}{"b":2}', {}),  # two objects
    ],
)
def test_control_payload(frame: bytes, control: dict) -> None:
    event = decode_envelope(encode_envelope(CONTROL_ROOM, 0, "", frame))
    assert event.control() == control


@pytest.mark.parametrize("room", ["lobby", " ", "dm:a:b"])
def test_an_event_of_a_room_is_never_a_control(room: str) -> None:
    frame = orjson.dumps({"type": "control", "action": "room_deleted", "room": room})
    assert decode_envelope(encode_envelope(room, 0, "", frame)).control() is None


def test_deeply_nested_control_json_does_not_crash() -> None:
    frame = b"[" * 100_000 + b"]" * 100_000
    assert decode_envelope(encode_envelope(CONTROL_ROOM, 0, "", frame)).control() == {}
