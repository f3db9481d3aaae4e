"""SQLite transactions that read, then write (a file claim, a ban, an invite's use) take
the write lock when they begin: in WAL mode a deferred transaction whose snapshot another
connection's commit made stale cannot upgrade to a write and fails at once with
"database is locked", whatever the busy timeout (seen: a send with files raced the
archiver's insert)."""

from __future__ import annotations

import threading

from chatroom.models.database import open_database


def test_a_read_then_write_transaction_survives_a_concurrent_commit(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'chat.db'}")
    db.execute_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, claim TEXT)")
    db.execute_sql("INSERT INTO item (claim) VALUES (NULL)")
    read, other_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with db.atomic():
                db.execute_sql("SELECT claim FROM item WHERE id = 1").fetchall()
                read.set()
                # Give the other writer time to commit (it can, unless we hold the lock).
                other_done.wait(0.5)
                db.execute_sql("UPDATE item SET claim = 'mine' WHERE id = 1")
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    def other_writer() -> None:
        read.wait(5)
        try:
            db.execute_sql("INSERT INTO item (claim) VALUES ('other')")
        except BaseException as exc:
            errors.append(exc)
        finally:
            other_done.set()
            db.close()

    threads = [threading.Thread(target=claim), threading.Thread(target=other_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    rows = db.execute_sql("SELECT claim FROM item ORDER BY id").fetchall()
    assert rows == [("mine",), ("other",)]
    db.close()
