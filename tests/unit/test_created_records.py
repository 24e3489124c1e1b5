"""Records the SQL adapter creates: their ids, records made without their dataclass ``__init__``, and the statements
that write them (pipeline/adapters/record_ids.py, effect_rows.py)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.adapters.effect_rows import (
    DEADLINE,
    EPISODE,
    NOTIFICATION,
    CreatedRows,
    DeadlineRow,
    EpisodeRow,
    NotificationRow,
)
from pipeline.adapters.record_ids import new_child_id, new_id
from pipeline.adapters.store_records import Deadline, Episode


def test_new_ids_are_canonical_version_7_uuids_in_creation_order_with_74_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, hyphens where uuid puts them
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the first 48 bits: the creation time in milliseconds
    # Every random position takes many values: nothing fixed there but the version and variant.
    for position in (15, 16, 17, 20, 21, 22, 24, 30, 35):
        assert len({text[position] for text in ids}) == 16
    assert {text[14] for text in ids} == {"7"}
    assert {text[19] for text in ids} == set("89ab")
    # Made a millisecond or more apart, they sort in the order made (B-tree pages fill from the right).
    first = new_id()
    time.sleep(0.002)
    assert first < new_id()


def test_child_ids_are_canonical_random_version_4_uuids() -> None:
    ids = [new_child_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Every position that uuid4 leaves random takes many values, the first ones too: no time in them.
    for position in (0, 1, 9, 15, 20, 24, 35):
        assert len({text[position] for text in ids}) == 16
    assert {text[14] for text in ids} == {"4"} and {text[19] for text in ids} == set("89ab")


def test_a_record_made_with_new_is_the_record_init_makes() -> None:
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    values = {"id": "d1", "kind": "trigger_meeting", "subject_id": "s", "event_id": None, "child_id": "c",
              "school_urn": None, "due_at": now, "state": "open", "escalation_level": 0, "next_step_at": now,
              "steps_json": "[]", "created_at": now}
    made = DeadlineRow.new(**values)
    assert type(made) is DeadlineRow
    assert made.__dict__ == DeadlineRow(**values).__dict__ == Deadline(**values).__dict__
    assert made.closed_at is None and made.closed_reason is None  # the defaults
    episode = EpisodeRow.new(episode_id="e1", updated_at=now)
    assert episode.__dict__ == Episode(episode_id="e1", updated_at=now).__dict__


def test_new_refuses_a_missing_or_unknown_field() -> None:
    with pytest.raises(TypeError, match="missing fields \\['updated_at'\\]"):
        EpisodeRow.new(episode_id="e1")
    with pytest.raises(TypeError, match="unknown fields \\['colour'\\]"):
        EpisodeRow.new(episode_id="e1", updated_at=datetime.now(UTC), colour="red")
    with pytest.raises(TypeError, match="missing fields"):
        NotificationRow.new(id="n1")
    # one field missing and one unknown: as many names as fields, but not the fields
    with pytest.raises(TypeError, match="missing fields \\['episode_id'\\], unknown fields \\['colour'\\]"):
        EpisodeRow.new(updated_at=datetime.now(UTC), colour="red")


def test_every_unit_of_work_shares_one_compiled_insert_and_update_per_table() -> None:
    for table, key in ((NOTIFICATION, "id"), (DEADLINE, "id"), (EPISODE, "episode_id")):
        first, second = CreatedRows(table, key), CreatedRows(table, key)
        assert first._insert is second._insert and first._update is second._update
    assert CreatedRows(NOTIFICATION)._insert is not CreatedRows(DEADLINE)._insert


def test_ids_drawn_ahead_are_not_shared_between_threads_or_with_a_forked_child() -> None:
    new_id()  # this thread has drawn ids ahead
    others: list[str] = []
    threads = [threading.Thread(target=lambda: others.extend(new_id() for _ in range(300))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    mine = [new_id() for _ in range(300)]
    assert len(set(mine + others)) == len(mine) + len(others)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, from bytes it draws itself
        os.write(write, "".join(new_id() for _ in range(5)).encode())
        os._exit(0)
    os.waitpid(child, 0)
    os.close(write)
    from_child = os.read(read, 4096).decode()
    os.close(read)
    parents_next = [new_id() for _ in range(5)]
    assert len(from_child) == 5 * 36 and not any(text in from_child for text in parents_next)


def test_records_by_an_indexed_attribute_follow_creation_assignment_refresh_and_rollback() -> None:
    now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    rows = CreatedRows(EPISODE, key="episode_id", indexed_by=("child_id",))
    read = EpisodeRow.new(episode_id="e1", updated_at=now, child_id="c1")
    rows.stored(read)  # read from the table
    new = EpisodeRow.new(episode_id="e2", updated_at=now)
    rows.buffer(new)  # created here, not linked yet
    assert rows.with_value("child_id", "c1") == [read] and rows.with_value("child_id", "c2") == []
    new.child_id = "c1"  # linked while still buffered
    assert rows.with_value("child_id", "c1") == [read, new]
    read.child_id = "c2"  # linked to another child
    assert rows.with_value("child_id", "c1") == [new] and rows.with_value("child_id", "c2") == [read]

    savepoint = object()
    rows.mark(savepoint)
    later = EpisodeRow.new(episode_id="e3", updated_at=now, child_id="c2")
    rows.buffer(later)
    read.child_id = "c3"
    assert rows.with_value("child_id", "c2") == [later] and rows.with_value("child_id", "c3") == [read]
    # e3 is gone, and e1 holds what was stored of it at the mark (its link to c2 was never written)
    rows.roll_back_to(savepoint)
    assert rows.with_value("child_id", "c1") == [read, new]
    assert rows.with_value("child_id", "c2") == rows.with_value("child_id", "c3") == []

    class Row:  # a row read again (now locked): its columns as stored by another writer
        _mapping = {"episode_id": "e1", "child_id": "c4"}

    rows.refreshed(read, Row())
    assert read.child_id == "c4" and rows.with_value("child_id", "c4") == [read]
    assert rows.with_value("child_id", "c1") == [new]
    rows.clear()
    assert rows.with_value("child_id", "c4") == [] and rows.with_value("child_id", "c1") == []


def test_an_index_on_an_attribute_the_record_class_does_not_report_is_refused() -> None:
    rows = CreatedRows(NOTIFICATION, indexed_by=("event_id",))
    with pytest.raises(TypeError, match="does not report assignments to \\['event_id'\\]"):
        rows.buffer(NotificationRow.new(
            id="n1", event_id="e1", pathway="self_harm", kind="alert", plan_key="k", recipient_role="dsl",
            recipient_ref="100001", school_urn=None, contact_email=None, contact_phone=None, urgency="URGENT",
            reason="r", status="pending", content_json="{}", deadline_id=None,
            created_at=datetime(2026, 3, 2, 9, tzinfo=UTC)))
