"""``chatroom files gc`` and the file counts of ``chatroom stats`` (issue 15), through CliRunner."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from chatroom.cli import main
from chatroom.config import Config
from chatroom.models import Room, User, open_database
from chatroom.models.database import utcnow
from chatroom.models.file_storage import DirectoryStorage
from chatroom.models.files import File
from chatroom.storage import initialise_database
from tests.files_helpers import files_on_disk


def chatroom(data_dir: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)])


def add_file(data_dir: Path, content: bytes, uid: str, age_hours: float, sent: bool) -> None:
    """A file row and its stored bytes, as an upload leaves them."""
    import hashlib

    config = Config(data_dir=data_dir)
    initialise_database(config)
    db = open_database(config.effective_database_url)
    try:
        user = User.by_name("alice") or User.create(
            name="alice", name_key="alice", password_hash="x"
        )
        sha = hashlib.sha256(content).hexdigest()
        source = data_dir / "source"
        source.write_bytes(content)
        DirectoryStorage(config.effective_files_dir).put(sha, source)
        source.unlink()
        File.create(
            uid=uid,
            owner_id=user.id,
            room_id=Room.by_name("lobby").id,
            name="f.txt",
            size=len(content),
            type="text/plain",
            sha256=sha,
            created=utcnow() - timedelta(hours=age_hours),
            message_id=1 if sent else None,
        )
    finally:
        db.close()


def test_stats_counts_files_and_bytes(tmp_path):
    data_dir = tmp_path / "data"
    result = chatroom(data_dir, "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert (stats["files"], stats["file_bytes"]) == (0, 0)
    add_file(data_dir, b"12345", "A" * 22, 0, sent=True)
    add_file(data_dir, b"1234567", "B" * 22, 0, sent=True)
    stats = json.loads(chatroom(data_dir, "stats", "--json").output)
    assert (stats["files"], stats["file_bytes"]) == (2, 12)
    assert "files: 2 (12 bytes)" in chatroom(data_dir, "stats").output


def test_files_gc_removes_old_unsent_files_only(tmp_path):
    data_dir = tmp_path / "data"
    add_file(data_dir, b"sent long ago", "A" * 22, 48, sent=True)
    add_file(data_dir, b"never sent", "B" * 22, 48, sent=False)
    add_file(data_dir, b"being sent now", "C" * 22, 0, sent=False)
    result = chatroom(data_dir, "files", "gc", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"files": 1, "objects": 1, "temp_files": 0}
    assert len(files_on_disk(data_dir / "files")) == 2
    result = chatroom(data_dir, "files", "gc", "--grace-hours", "0")
    assert "files removed: 1" in result.output and "stored objects removed: 1" in result.output
    assert len(files_on_disk(data_dir / "files")) == 1


def test_files_gc_refuses_a_bad_files_url(tmp_path):
    result = chatroom(tmp_path / "data", "files", "gc", "--files-url", "http://nope")
    assert result.exit_code == 2 and "files_url must look like s3://" in result.output
