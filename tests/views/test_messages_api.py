"""SPEC §5 over HTTP for bots: POST a message, PATCH (edit) and DELETE it, with the
socket's rules, errors, rate limits and client_id dedupe."""

from __future__ import annotations

import pytest

from tests.helpers import body

pytestmark = pytest.mark.timeout(60)

MESSAGES = "/api/rooms/lobby/messages"


async def test_send_edit_delete_over_http(app):
    watcher = await app.client("watcher")
    token = await app.api.user("bot")
    sent = await app.api.request("POST", MESSAGES, {"text": "beep", "client_id": "b1"}, token)
    assert sent.code == 201 and body(sent) == {"id": 1, "room": "lobby"}
    again = await app.api.request("POST", MESSAGES, {"text": "beep", "client_id": "b1"}, token)
    assert body(again)["id"] == 1  # deduplicated
    message = await watcher.next("message")
    assert message["user"] == "bot" and message["text"] == "beep"
    await watcher.nothing("message")
    reply = await app.api.request("POST", MESSAGES, {"text": "re", "reply_to": 1}, token)
    assert (await watcher.next("message", id=body(reply)["id"]))["reply_to"]["user"] == "bot"
    edited = await app.api.request("PATCH", f"{MESSAGES}/1", {"text": "boop"}, token)
    assert edited.code == 200 and body(edited)["rev"] == message["rev"] + 2
    assert (await watcher.next("edited"))["text"] == "boop"
    gone = await app.api.request("DELETE", f"{MESSAGES}/1", token=token)
    assert gone.code == 200
    assert (await watcher.next("deleted"))["id"] == 1
    items = body(await app.api.request("GET", MESSAGES, token=token))["messages"]
    assert items[0]["deleted"] is True and items[0]["text"] == ""


@pytest.mark.parametrize(
    "method, path, payload, status, code",
    [
        ("PATCH", f"{MESSAGES}/1", {"text": "mine now"}, 403, "forbidden"),
        ("DELETE", f"{MESSAGES}/1", None, 403, "forbidden"),
        ("PATCH", f"{MESSAGES}/99", {"text": "x"}, 404, "not_found"),
        ("DELETE", f"{MESSAGES}/0", None, 404, "not_found"),
        ("PATCH", f"{MESSAGES}/{2**60}", {"text": "x"}, 400, "bad_request"),
        ("PATCH", f"{MESSAGES}/1", {"text": 5}, 400, "bad_request"),
        ("PATCH", "/api/rooms/nowhere/messages/1", {"text": "x"}, 404, "not_found"),
        ("POST", MESSAGES, {"text": "x", "reply_to": "1"}, 400, "bad_request"),
        ("POST", MESSAGES, {"text": "x", "reply_to": 42}, 404, "not_found"),
        ("POST", MESSAGES, {"text": ""}, 400, "bad_request"),
        ("POST", MESSAGES, {"text": "x", "client_id": "y" * 65}, 400, "bad_request"),
    ],
)
async def test_bad_requests_change_nothing(app, method, path, payload, status, code):
    owner = await app.api.user("owner")
    await app.api.request("POST", MESSAGES, {"text": "owned"}, owner)
    token = await app.api.user("other")
    response = await app.api.request(method, path, payload, token)
    assert (response.code, body(response)["error"]["code"]) == (status, code)
    items = body(await app.api.request("GET", MESSAGES, token=token))["messages"]
    assert [(m["id"], m["text"], m["rev"]) for m in items] == [(1, "owned", 1)]


async def test_http_sends_and_edits_share_the_rate_limit(app_factory):
    app = await app_factory(send_burst=3, send_per_second=0.2)
    token = await app.api.user("bot")
    codes = [(await app.api.request("POST", MESSAGES, {"text": "a"}, token)).code]
    for _ in range(3):
        codes.append((await app.api.request("PATCH", f"{MESSAGES}/1", {"text": "b"}, token)).code)
    assert codes == [201, 200, 200, 429]
