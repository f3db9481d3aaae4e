"""/metrics on its own listener, and JSON logs."""

from __future__ import annotations

import orjson
import pytest

from tests.helpers import Api
from tests.processes import free_port


async def test_metrics_count_what_happens(app_factory):
    port = free_port()
    app = await app_factory(metrics_port=port)
    alice = await app.client("alice")
    await alice.send("hello", client_id="m1")
    await alice.next("ack")
    await alice.send_frame({"type": "nonsense"})
    await alice.next("error")
    text = (await Api(f"http://127.0.0.1:{port}").request("GET", "/metrics")).body.decode()
    assert "chatroom_connections 1.0" in text
    assert "chatroom_messages_stored_total 1.0" in text
    assert 'chatroom_frames_in_total{type="send"} 1.0' in text
    assert 'chatroom_frames_in_total{type="unknown"} 1.0' in text
    assert 'chatroom_errors_total{code="bad_request"} 1.0' in text
    assert "chatroom_send_seconds_count 1.0" in text
    # Not on the public port.
    assert (await app.api.request("GET", "/metrics")).code == 404


@pytest.mark.timeout(60)
async def test_json_logs_are_one_object_per_line(tmp_path, serve_processes):
    server = serve_processes(tmp_path / "data", "--log-format", "json")
    await server.ready()
    await server.api.user("alice")
    assert server.stop() == 0
    records = [
        orjson.loads(line) for line in server.read_output().splitlines() if line.startswith("{")
    ]
    assert any(r["logger"] == "tornado.access" and "/api/login" in r["message"] for r in records)
    assert all({"time", "level", "logger", "pid", "message"} <= set(r) for r in records)
