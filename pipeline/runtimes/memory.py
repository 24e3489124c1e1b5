"""What both runtimes do with the process's memory after start-up."""

from __future__ import annotations

import gc

# Allocations (less deallocations) between two collections of the youngest generation: Python's default is 700.
# Processing an event makes a few hundred short-lived containers (records, rows, plans), most gone by the end of
# its batch: collected every 700 they are walked while still alive, promoted, and walked again by the older
# generations' passes. Measured with the demo roll, 1,200 events processed after the freeze (bench/results/intake.md,
# 2026-12-03, route-cpu): the collector's own thread CPU per event 0.071 ms at 700, 0.038 at 10,000, 0.025 at 50,000
# (at 700 about 1% of processing's instructions, the rest of its cost cache misses). A pass over 50,000 young objects
# is a few milliseconds; cyclic garbage waits at most that many allocations longer.
YOUNGEST_THRESHOLD = 50_000


def freeze_start_up_objects() -> None:
    """Move everything alive after start-up (the match index: millions of objects at a large roll) out of the
    garbage collector's reach: a full collection would otherwise walk them all, pausing every thread for
    seconds at 1,000,000 children. They live as long as the process; later objects are collected as usual, the
    youngest generation every ``YOUNGEST_THRESHOLD`` allocations."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, older, oldest)
