"""An error names the ``client_id`` and ``room`` of the frame it answers, even when the
strict JSON parser refused that frame (lone surrogate escapes, NaN)."""

from __future__ import annotations

import json

import pytest

LONE = "\ud800"


def wire(value: object) -> str:
    """JSON text as a lenient client writes it: lone surrogates as \\uXXXX escapes, NaN bare."""
    return json.dumps(value)  # ensure_ascii: "\ud800" becomes the six characters \ud800


SEND = {"type": "send", "room": "lobby", "text": "hi", "client_id": "c1"}


@pytest.mark.parametrize(
    "raw",
    [
        wire({**SEND, "text": LONE}),
        wire({**SEND, "text": "ok \udfff\ud800 ok"}),
        wire({**SEND, "extra": LONE}),
        wire({**SEND, "n": float("nan")}),
        wire({**SEND, "n": float("-inf")}),
    ],
)
async def test_a_refused_send_names_its_client_id_and_room(app, raw):
    alice = await app.client("alice")
    await alice.send_frame(raw)
    error = await alice.next("error")
    assert error["code"] == "bad_request"
    assert error["client_id"] == "c1" and error["room"] == "lobby"
    await alice.send("after", client_id="c2")
    ack = await alice.next("ack")
    assert ack["client_id"] == "c2" and ack["id"] == 1  # the refused one was not stored


async def test_a_field_that_cannot_be_sent_back_is_left_out(app):
    alice = await app.client("alice")
    await alice.send_frame(wire({**SEND, "text": LONE, "client_id": "c" + LONE}))
    error = await alice.next("error")
    assert error["code"] == "bad_request" and error["room"] == "lobby"
    assert "client_id" not in error
    await alice.send_frame(wire({**SEND, "room": "x" + LONE, "client_id": "c3"}))
    error = await alice.next("error")
    assert error["client_id"] == "c3" and "room" not in error


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 50_000,
        '{"type":"send","room":"lobby"',
        wire(["send", LONE]),
        wire(LONE),
        wire({"room": {"x": LONE}, "client_id": 5}),
        '{"n": 1' + "0" * 5000 + "}",
    ],
    ids=lambda raw: raw[:20],
)
async def test_other_unparseable_frames_get_a_plain_error_and_the_socket_stays(app, raw):
    alice = await app.client("alice")
    await alice.send_frame(raw)
    error = await alice.next("error")
    assert error["code"] == "bad_request"
    assert "client_id" not in error and "room" not in error
    await alice.send_frame({"type": "ping"})
    assert await alice.next("pong") == {"type": "pong"}
