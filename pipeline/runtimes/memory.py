"""What both runtimes do with the process's memory after start-up."""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    """Move everything alive after start-up (the match index: millions of objects at a large roll) out of the
    garbage collector's reach: a full collection would otherwise walk them all, pausing every thread for
    seconds at 1,000,000 children. They live as long as the process; later objects are collected as usual."""
    gc.collect()
    gc.freeze()
