"""SQLite WAL checkpoints in a thread of their own, off the path of every event.

By default SQLite checkpoints inside whichever commit takes the write-ahead log past ``wal_autocheckpoint``
pages (1,000): that commit copies the whole log into the database file and fsyncs it while holding the write
lock, so an event that arrives then waits for it. At 50 events a second a self-harm attendance writes about 75
WAL frames (one per page it touches, in three transactions), so that was a checkpoint every 15 events or so,
each one landing on one event's latency, and each one rewriting the same hot pages (index leaves) again.

A long-running process (the embedded runtime) hands checkpoints to a ``WalCheckpointer`` instead:

- its own connections raise ``wal_autocheckpoint`` to ``safety_pages`` (a bound the log never passes even if
  this thread stopped, not a schedule);
- every ``every_seconds`` the thread runs a PASSIVE checkpoint, which copies the log into the database file
  without taking the write lock: writers go on appending meanwhile, and none waits for it;
- once the log holds ``restart_pages`` frames, the thread takes the process's write lock for one more PASSIVE
  checkpoint, of just the frames appended since the last one (the fsync of the database file is the only
  wait), so the whole log is copied and the next commit starts it again from its beginning: the file is
  overwritten in place rather than grown, and stays about ``restart_pages`` frames long. (A commit can only
  restart the log when no checkpoint is behind it, which under a steady trickle of events never happens by
  chance.)

If a reader keeps an old snapshot, the log cannot be copied past it (SQLite's rule, as with its automatic
checkpoints): the next rounds try again, and at ``safety_pages`` a commit checkpoints itself.

Durability is unchanged: every commit is still on disk when it returns (``synchronous=FULL``); a checkpoint
only moves committed pages from the log into the database file, and fsyncs that file, as before. Other
processes (``safeguard produce``, ``safeguard load``) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalState:
    """What a checkpoint reported: whether it was blocked, frames in the log, frames copied to the database."""

    busy: bool
    log_frames: int
    checkpointed_frames: int

    @property
    def complete(self) -> bool:
        return not self.busy and self.checkpointed_frames >= self.log_frames


class WalCheckpointer:
    """Runs the store's WAL checkpoints from a background thread (see the module docstring)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None, *,
                 every_seconds: float = 1.0, restart_pages: int = 8_000, safety_pages: int = 16_000) -> None:
        self.engine = engine
        self.write_lock = write_lock
        self.every_seconds = every_seconds
        self.restart_pages = restart_pages
        self.safety_pages = safety_pages
        self._connection: Any = None

    def _checkpoint(self, mode: str) -> WalState:
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        cursor = self._connection.cursor()
        try:
            busy, log_frames, checkpointed = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            cursor.close()
        return WalState(bool(busy), int(log_frames), int(checkpointed))

    def checkpoint_once(self) -> WalState:
        """One round: the bulk without the write lock; past ``restart_pages`` frames, the rest with it."""
        state = self._checkpoint("PASSIVE")
        if state.log_frames >= self.restart_pages:
            with self.write_lock if self.write_lock is not None else nullcontext():
                state = self._checkpoint("PASSIVE")
            if not state.complete:
                log.warning("a reader kept the WAL from being copied (%d of %d frames)", state.checkpointed_frames,
                            state.log_frames)
        return state

    def run(self, stop: threading.Event) -> None:
        """Checkpoint every ``every_seconds`` until ``stop`` is set, and once more then."""
        try:
            while not stop.wait(self.every_seconds):
                try:
                    self.checkpoint_once()
                except Exception as error:  # noqa: BLE001 - the next round tries again; the safety bound holds
                    log.error("WAL checkpoint failed (%s)", type(error).__name__)
            self.checkpoint_once()
        finally:
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
