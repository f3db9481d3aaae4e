"""Uploads over the server-wide body limit (1 MiB) up to --max-upload-bytes (issue 15)."""

from __future__ import annotations

import pytest

from tests.files_helpers import raw_request, read_response, upload_head, uploaded

pytestmark = pytest.mark.timeout(60)


async def test_a_file_over_max_body_bytes_uploads_with_the_default_settings(app):
    token = await app.api.user("alice")
    content = bytes(range(256)) * (12 * 1024)  # 3 MiB: over max_body_bytes (1 MiB)
    file = await uploaded(app, token, content, "big.bin")
    assert file["size"] == len(content)
    served = await app.api.request("GET", file["url"], token=token)
    assert served.code == 200 and served.body == content


async def test_one_byte_over_max_upload_bytes_is_still_413_unread(app):
    token = await app.api.user("alice")
    limit = app.server.config.max_upload_bytes
    reader, writer = await raw_request(app.port, upload_head("lobby", token, limit + 1))
    status, reply = await read_response(reader)
    writer.close()
    assert status == 413 and reply["error"]["code"] == "too_large"
    assert "file is larger" in reply["error"]["message"]  # the upload limit, not 1 MiB
