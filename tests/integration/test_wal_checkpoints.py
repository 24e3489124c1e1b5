"""WAL checkpoints off the commit path (pipeline/adapters/wal_checkpoint.py): the store's commits no longer
checkpoint at SQLite's 1,000 pages, the background round copies the log and lets the next commit restart it,
and the embedded runtime runs that round in a thread of its own."""

from __future__ import annotations

import struct
from pathlib import Path

from sqlalchemy import text

from pipeline.adapters.store import Store


def _log_frames(db: Path) -> tuple[int, int]:
    """(frames in the WAL, frames copied to the database) from the WAL index's header in the -shm file
    (https://sqlite.org/walformat.html: mxFrame at byte 16, nBackfill at byte 96), read without copying any:
    SQLite's own checkpoint pragma copies as it reports, and the -wal file's size never shrinks."""
    header = Path(f"{db}-shm").read_bytes()[:136]
    return struct.unpack_from("<I", header, 16)[0], struct.unpack_from("<I", header, 96)[0]


def _write(store: Store, rows: int, width: int = 3000) -> None:
    for index in range(rows):
        with store.transaction() as session:
            session.execute(text("INSERT INTO filler (body) VALUES (:body)"), {"body": f"{index:08d}" * (width // 8)})


def test_commits_stop_checkpointing_and_the_background_round_restarts_the_log(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    store = Store(f"sqlite:///{db}")
    with store.transaction() as session:
        session.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
    checkpointer = store.take_over_wal_checkpoints(every_seconds=60, restart_pages=40)
    assert checkpointer is not None
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 80  # the safety bound

    _write(store, 20)  # three frames each: past restart_pages, under the safety bound
    frames, copied = _log_frames(db)
    assert frames >= 40 and copied == 0  # no commit checkpointed

    state = checkpointer.checkpoint_once()
    assert state.complete and state.log_frames == frames
    _write(store, 1)
    frames_after, _ = _log_frames(db)
    assert frames_after < 10  # the next commit started the log again from its beginning
    checkpointer.close()
    store.dispose()


def test_past_the_safety_bound_a_commit_checkpoints_itself(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    store = Store(f"sqlite:///{db}")
    with store.transaction() as session:
        session.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
    assert store.take_over_wal_checkpoints(every_seconds=60, restart_pages=10) is not None  # never run
    _write(store, 60)
    frames, _ = _log_frames(db)
    assert frames < 40  # bounded by the commits' own checkpoints at 20 frames, though no round ran
    store.dispose()


def test_no_checkpointer_for_an_in_memory_database() -> None:
    assert Store("sqlite://").take_over_wal_checkpoints() is None
