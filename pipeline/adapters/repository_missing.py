"""The SQL answers to the missing pathway's and casework's questions (pipeline/ports/episodes.py and
pipeline/ports/casework.py): a mixin of ``pipeline.adapters.repository.Repository``, over its session."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, func, insert, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, select

from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement, json_value, rows_by_keys
from pipeline.adapters.effect_rows import DEADLINE, EPISODE, CreatedRows, DeadlineRow, EpisodeRow, values_of
from pipeline.adapters.inbox import school_copies
from pipeline.domain.missing import trigger_subject
from pipeline.domain.model import DeadlineKind, DeadlineState
from pipeline.ports.records import NotificationRecord

TRIGGER_MEETING: Table = t.TriggerMeeting.__table__  # type: ignore[attr-defined]
AUDIT: Table = t.AuditEntry.__table__  # type: ignore[attr-defined]
_LAST_MEETING = DriverStatement(sa_select(TRIGGER_MEETING.c.held_at).where(
    TRIGGER_MEETING.c.child_id == bindparam("child_id")).order_by(TRIGGER_MEETING.c.held_at.desc()).limit(1))
# Episodes are read with Core and kept as plain records (effect_rows.EpisodeRow): statements built once, run on
# the driver's cursor (pipeline/adapters/driver_statements.py).
_EPISODE = DriverStatement(sa_select(EPISODE).where(EPISODE.c.episode_id == bindparam("episode_id")))
_EPISODE_FOR_UPDATE = DriverStatement(_EPISODE.statement.with_for_update())
_EPISODES_FOR_UPDATE = sa_select(EPISODE).where(EPISODE.c.episode_id.in_(bindparam("episode_ids", expanding=True))) \
    .order_by(EPISODE.c.episode_id).with_for_update()
# A batch's new episodes in one statement (PostgreSQL), the ids inserted read back.
_NEW_EPISODES = (f"INSERT INTO missingepisode ({', '.join(EPISODE.c.keys())}) SELECT {', '.join(EPISODE.c.keys())}"
                 " FROM json_populate_recordset(NULL::missingepisode, %s::json) ON CONFLICT DO NOTHING"
                 " RETURNING episode_id")
_EPISODES_OF_CHILD = DriverStatement(sa_select(EPISODE).where(EPISODE.c.child_id == bindparam("child_id"))
                                     .order_by(EPISODE.c.episode_id))  # as _EPISODES_OF_CHILDREN orders them
_EPISODES_OF_CHILDREN = sa_select(EPISODE).where(EPISODE.c.child_id.in_(bindparam("child_ids", expanding=True))) \
    .order_by(EPISODE.c.episode_id)
# A batch's children's pending trigger meetings (``Repository._guard_known``), read when first needed, so after the
# batch's children are locked: a meeting held closes it under the child's lock. Through the partial unique index,
# named on SQLite: without statistics its planner takes an equality on an index's first column for about ten rows,
# so for more than ten children it chose ix_deadline_sweep (state = 'open') and read every open deadline, a cost
# that grew with the deployment's history (13 ms a batch of 64 after 10,000 missing reports).
_SQLITE_NAMES = sqlite.dialect().identifier_preparer
_OPEN_MEETINGS_OF_CHILDREN = sa_select(DEADLINE).where(
    text(t.OPEN_TRIGGER_MEETING), DEADLINE.c.child_id.in_(bindparam("child_ids", expanding=True)))
_OPEN_MEETINGS_OF_CHILDREN_SQLITE = text(
    f"SELECT {', '.join(_SQLITE_NAMES.quote(column.name) for column in DEADLINE.c)} FROM deadline"
    f" INDEXED BY {t.OPEN_TRIGGER_MEETING_INDEX}"
    f" WHERE {t.OPEN_TRIGGER_MEETING} AND child_id IN :child_ids").bindparams(
    bindparam("child_ids", expanding=True)).columns(*DEADLINE.c)
_LAST_MEETINGS = sa_select(TRIGGER_MEETING.c.child_id, func.max(TRIGGER_MEETING.c.held_at).label("held_at")).where(
    TRIGGER_MEETING.c.child_id.in_(bindparam("child_ids", expanding=True))).group_by(TRIGGER_MEETING.c.child_id)
_FIRST_AUDIT_REASON = DriverStatement(sa_select(AUDIT.c.reason).where(
    AUDIT.c.subject_id == bindparam("subject_id"), AUDIT.c.action == bindparam("action")).order_by(AUDIT.c.id).limit(1))
_TRIGGER_MEETING_INSERT = DriverStatement(insert(TRIGGER_MEETING))


class EpisodeQueries:
    """Episodes, trigger meetings and casework look-ups, in the repository's transaction."""

    if TYPE_CHECKING:
        @property
        def session(self) -> Session: ...

        postgres: bool

        _deadlines: CreatedRows
        _notifications: CreatedRows
        _episodes: CreatedRows
        _locked_episodes: set[str]
        _new_children: set[str]
        _children_ahead: set[str]
        _meetings_held: dict[str, datetime | None]
        _episodes_to_read: set[str]
        _episodes_ahead: set[str]
        _locked_children: set[str]
        _subjects_known: set[str]
        _meetings_known: set[str]
        _meetings_to_read: set[str]

        def _read_pupil_involvements_ahead(self, child_ids: Sequence[str]) -> None: ...

        def _insert_guarded(self, table: Table, record: Any) -> bool: ...

        def _write_created(self) -> None: ...

        def deadline_rows(self, *where: Any, order: bool = False, limit: int | None = None,
                          skip_locked: bool = False) -> list[DeadlineRow]: ...

    # ---- episodes ----------------------------------------------------------------------------------
    # One record per episode per unit of work: read (or created) once, then answered from memory; its changes
    # are written as an UPDATE of the changed columns before the next read of episodes, a savepoint or the
    # commit. Reads are Core statements on the session's connection, so they flush nothing.
    def _write_episodes(self) -> None:
        if self._episodes:
            self._episodes.write(self.session.connection())

    def _episode_row(self, query: DriverStatement, episode_id: str) -> EpisodeRow | None:
        found = self._episodes.loaded(query.rows(self.session.connection(), {"episode_id": episode_id}), EpisodeRow)
        return found[0] if found else None

    def episode(self, episode_id: str) -> EpisodeRow | None:
        known: EpisodeRow | None = self._episodes.by_id.get(episode_id)
        return known if known is not None else self._episode_row(_EPISODE, episode_id)

    def episode_for_update(self, episode_id: str) -> EpisodeRow:
        known: EpisodeRow | None = self._episodes.by_id.get(episode_id)
        if known is not None and (episode_id in self._locked_episodes or not self.postgres):
            return known  # SQLite: this unit of work holds the database's write lock from its start
        query = _EPISODE_FOR_UPDATE if self.postgres else _EPISODE
        if known is not None:  # read earlier without the lock: read again, locked
            row = query.first(self.session.connection(), {"episode_id": episode_id})
            if row is not None:
                self._episodes.refreshed(known, row)
                self._locked_episodes.add(episode_id)
                return known
        found = self._episode_row(query, episode_id)
        if found is None and not self.postgres:
            found = self._new_sqlite_episode(episode_id)
        elif found is None:
            created = EpisodeRow.new(episode_id=episode_id, updated_at=t.utcnow())
            if self._insert_guarded(EPISODE, values_of(created)):
                self._episodes.stored(created)
                found = created
            else:  # another worker created it a moment ago: take theirs, locked
                found = self._episode_row(query, episode_id)
                assert found is not None
        self._locked_episodes.add(episode_id)
        return found

    def episodes_for_update(self, episode_ids: Sequence[str]) -> list[EpisodeRow]:
        """On PostgreSQL the episodes this unit of work has not locked yet take two statements for them all (the
        locked read of the stored ones, in episode id order; the insert of the new ones) instead of one or two
        each; on SQLite, where this unit of work holds the write lock, ``episode_for_update`` of each."""
        wanted = list(dict.fromkeys(episode_ids))
        unlocked = sorted(set(wanted).difference(self._locked_episodes))
        if self.postgres and unlocked:
            connection = self.session.connection()
            for row in connection.execute(_EPISODES_FOR_UPDATE, {"episode_ids": unlocked}):
                known = self._episodes.by_id.get(row.episode_id)
                if known is not None:  # read earlier without the lock: the stored columns it has not changed
                    self._episodes.refreshed(known, row)
                else:
                    self._episodes.loaded([row], EpisodeRow)
                self._locked_episodes.add(row.episode_id)
            created = [EpisodeRow(episode_id=episode_id, updated_at=t.utcnow()) for episode_id in unlocked
                       if episode_id not in self._locked_episodes]
            inserted: set[str] = set()
            if created:
                values = [values_of(episode) for episode in created]
                inserted = {found[0] for found in connection.exec_driver_sql(
                    _NEW_EPISODES, (json.dumps(values, default=json_value),))}
                for episode in created:
                    if episode.episode_id in inserted:
                        self._episodes.stored(episode)
                        self._locked_episodes.add(episode.episode_id)
                # Another worker created the rest a moment ago: episode_for_update takes theirs, locked.
            self._new_episodes_known(inserted)
        elif unlocked:
            self._sqlite_episodes_ahead([episode_id for episode_id in unlocked
                                         if episode_id not in self._episodes.by_id])
        return [self.episode_for_update(episode_id) for episode_id in wanted]

    def _new_episodes_known(self, created: Collection[str]) -> None:
        """Episodes this unit of work just created (locked): nothing is stored of them yet, so their deadlines and
        those of the trigger meetings raised on them are known, none (``Repository._guard_known``). A stored
        episode's are known once ``deadlines_of_subjects`` has read them, in the event that asks."""
        self._subjects_known.update(subject for episode_id in created
                                    for subject in (episode_id, trigger_subject(episode_id)))

    def _read_meetings_ahead(self) -> None:
        """The pending trigger meetings of the batch's locked children still to read, in one statement, when first
        asked about: by then the batch's children are locked (a meeting held closes it under the child's lock)."""
        if not self._meetings_to_read:
            return
        children = sorted(self._meetings_to_read)
        self._meetings_to_read.clear()
        query = _OPEN_MEETINGS_OF_CHILDREN if self.postgres else _OPEN_MEETINGS_OF_CHILDREN_SQLITE
        self._deadlines.loaded(self.session.connection().execute(query, {"child_ids": children}), DeadlineRow)
        self._meetings_known.update(children)

    def _sqlite_episodes_ahead(self, episode_ids: list[str]) -> None:
        """SQLite: the stored episodes of ``episode_ids`` read in one statement, and the new ones buffered, each
        inserted at the next write point as it is by then (``_new_sqlite_episode``), where ``episode_for_update``
        of each reads them one by one."""
        if not episode_ids:
            return
        connection = self.session.connection()
        self._episodes.loaded(rows_by_keys(connection, episode_ids, _EPISODE_FOR_UPDATE, "episode_id",
                                           _EPISODES_FOR_UPDATE, "episode_ids"), EpisodeRow)
        created = [episode_id for episode_id in episode_ids if episode_id not in self._episodes.by_id]
        for episode_id in created:
            self._new_sqlite_episode(episode_id)
        self._locked_episodes.update(episode_ids)
        self._new_episodes_known(created)

    def _new_sqlite_episode(self, episode_id: str) -> EpisodeRow:
        """A new episode on SQLite, just read as absent: buffered, so it is inserted once with what the unit of work
        puts in it (one row written, where inserting it at once, then updating it at the commit, wrote two). No
        other writer can insert it meanwhile: this unit of work holds the write lock from its start (``BEGIN
        IMMEDIATE``); a deferred one that had to wait for it would fail at its first write anyway, its snapshot
        (the read that found no episode) being older than the other writer's commit."""
        created = EpisodeRow.new(episode_id=episode_id, updated_at=t.utcnow())
        self._episodes.buffer(created)
        return created

    def read_children_ahead(self, child_ids: Sequence[str]) -> None:
        """The children's last trigger meetings held in one statement, and their pupils' involvements in one more,
        for those not read ahead yet; their stored episodes are read together later, for the children whose
        episodes the batch asks for (``_read_episodes_ahead``)."""
        wanted = sorted(set(child_ids).difference(self._children_ahead))
        if not wanted:
            return
        connection = self.session.connection()
        stored = [child_id for child_id in wanted if child_id not in self._new_children]
        if stored:
            held = {row.child_id: row.held_at for row in connection.execute(_LAST_MEETINGS, {"child_ids": stored})}
            for child_id in stored:
                self._meetings_held[child_id] = held.get(child_id)
            self._episodes_to_read.update(stored)
        self._children_ahead.update(wanted)
        # Their pending trigger meetings: none for a child made here; on PostgreSQL only of the children locked
        # (another writer's pending meeting, raised or held, waits for the lock).
        self._meetings_known.update(child_id for child_id in wanted if child_id in self._new_children)
        self._meetings_to_read.update(child_id for child_id in stored
                                      if not self.postgres or child_id in self._locked_children)
        self._read_pupil_involvements_ahead(wanted)

    def _read_episodes_ahead(self, child_id: str) -> None:
        """The stored episodes of ``child_id`` and of the other children read ahead still to read, in one statement,
        kept among this unit of work's episodes; except the children with a trigger meeting pending as far as this
        unit of work knows: the missing pathway asks for a child's episodes only when it has none (a year of a
        frequently missing child's episodes, read on every batch about it, was most of a batch's reads)."""
        wanted = [other for other in self._episodes_to_read if other == child_id or other not in self._meetings_known
                  or self._pending_meeting_in_memory(other) is None]
        self._episodes_to_read.difference_update(wanted)
        self._episodes.loaded(rows_by_keys(self.session.connection(), sorted(wanted), _EPISODES_OF_CHILD, "child_id",
                                           _EPISODES_OF_CHILDREN, "child_ids"), EpisodeRow)
        self._episodes_ahead.update(wanted)

    def episodes_of_child(self, child_id: str) -> Sequence[EpisodeRow]:
        # The stored ones, as this unit of work holds them, and those it linked to the child since (changes are
        # not written for this read: they go in one statement per set of columns at the commit).
        # A child this unit of work created has no stored episode: only those linked to it here; a child read ahead
        # has all its stored ones among this unit of work's episodes once they are read.
        if child_id in self._episodes_to_read:
            self._read_episodes_ahead(child_id)
        stored = [] if child_id in self._new_children or child_id in self._episodes_ahead else self._episodes.loaded(
            _EPISODES_OF_CHILD.rows(self.session.connection(), {"child_id": child_id}), EpisodeRow)
        found = {row.episode_id: row for row in stored if row.child_id == child_id}
        for row in self._episodes.with_value("child_id", child_id):
            found.setdefault(row.episode_id, row)
        return list(found.values())

    # ---- trigger meetings --------------------------------------------------------------------------
    def open_trigger_meeting(self, child_id: str) -> DeadlineRow | None:
        self._read_meetings_ahead()
        if child_id in self._meetings_known:
            return self._pending_meeting_in_memory(child_id)
        found = self.deadline_rows(text(t.OPEN_TRIGGER_MEETING), DEADLINE.c.child_id == child_id, limit=1)
        return found[0] if found else None

    def _pending_meeting_in_memory(self, child_id: str) -> DeadlineRow | None:
        """The child's open trigger meeting among this unit of work's deadlines, if any."""
        return next((d for d in self._deadlines.with_value("child_id", child_id)
                     if d.kind == DeadlineKind.TRIGGER_MEETING and d.state == DeadlineState.OPEN), None)

    def last_trigger_meeting_held(self, child_id: str) -> datetime | None:
        if child_id in self._new_children:
            return None  # a child created in this unit of work (add_trigger_meeting takes it off the list)
        if child_id in self._meetings_held:  # read ahead (add_trigger_meeting keeps it up to date)
            return self._meetings_held[child_id]
        held: datetime | None = _LAST_MEETING.scalar(self.session.connection(), {"child_id": child_id})
        return held

    def add_trigger_meeting(self, child_id: str, held_at: datetime, outcome: str, event_id: str) -> None:
        # Written at once (not an ORM row flushed later), so ``last_trigger_meeting_held`` reads it without a flush.
        self._new_children.discard(child_id)
        if child_id in self._meetings_held:
            last = self._meetings_held[child_id]
            self._meetings_held[child_id] = held_at if last is None or held_at > last else last
        _TRIGGER_MEETING_INSERT.run(self.session.connection(), {
            "child_id": child_id, "held_at": held_at, "outcome": outcome, "event_id": event_id})

    def rebind_deadline(self, deadline: Any, child_id: str) -> None:
        deadline.child_id = child_id
        # At once: the partial unique index now guards the child's one pending meeting.
        self._deadlines.write(self.session.connection())

    def first_audit_reason(self, subject_id: str, action: str) -> str | None:
        reason: str | None = _FIRST_AUDIT_REASON.scalar(self.session.connection(),
                                                        {"subject_id": subject_id, "action": action})
        return reason

    # ---- casework ----------------------------------------------------------------------------------
    def school_copies(self, notification: NotificationRecord) -> Sequence[NotificationRecord]:
        self._write_created()
        return self._notifications.known(school_copies(self.session, notification))

    def open_deadline_of_event(self, event_id: str, kind: str) -> DeadlineRow | None:
        # By the event alone (its handful of deadlines, through ix_deadline_event_id), kind and state checked here:
        # with them in the query, SQLite chose ix_deadline_sweep (state) and read every open deadline.
        return next((row for row in self.deadline_rows(DEADLINE.c.event_id == event_id, order=True)
                     if row.kind == kind and row.state == DeadlineState.OPEN), None)

    def notifications_of_event(self, event_id: str) -> Sequence[Any]:
        self._write_created()
        return self._notifications.known(self.session.exec(
            select(t.Notification).where(t.Notification.event_id == event_id)).all())

    def person_key_of(self, child_id: str) -> str | None:
        child = self.session.get(t.Child, child_id)
        return child.person_key if child is not None else None
