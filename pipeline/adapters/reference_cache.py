"""This process's in-memory copy of the reference data every event reads: the current schools by URN, the team
directory, and the team of each allocated worker, team manager and IRO.

Kept current like a Kafka Streams GlobalKTable (and like the match index, pipeline/adapters/match_index.py): its
version is the newest sequence number of the reference change log (``ReferenceChange``), which ``safeguard load``
writes for every kind in the same transaction as the rows it changes, and with loads taking turns so sequence
numbers are in commit order (pipeline/adapters/reference_store.py). A unit of work reads the version once (one
``max`` over the log's primary key, pipeline/adapters/repository.py) and is answered from the snapshot of exactly
that version: when the process's snapshot is of another version, the parts whose kinds changed since are read
again (schools; teams; involvements for the people's teams) and the newer snapshot kept. So a load committed
by another process is seen by the next unit of work (the next batch) of every running process, without a
restart, and a unit of work never mixes two versions.

What is held is small whatever the roll (schools, teams, and one entry per person named on an open
involvement), and exactly what the queries answered: current rows only (a school or team ended by a load is
gone), the lowest team name per person by the database's own ``min`` (its collation, as ``ORDER BY`` used).
Per-child facts (pupils on roll on a day, a child's involvements, home education) are a row or two per child
out of up to a million: they stay indexed queries, asked once per event, rather than held in every process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection

from pipeline.adapters import tables as t
from pipeline.domain.model import Contact, Directory, School

CHANGE: Table = t.ReferenceChange.__table__  # type: ignore[attr-defined]
SCHOOL: Table = t.School.__table__  # type: ignore[attr-defined]
TEAM_CONTACT: Table = t.TeamContact.__table__  # type: ignore[attr-defined]
INVOLVEMENT: Table = t.Involvement.__table__  # type: ignore[attr-defined]

# The column of an involvement naming each kind of person whose team is looked up.
PERSON_COLUMNS = {"worker": "worker_email", "team_manager": "manager_email", "iro": "iro_email"}


def reference_version(connection: Connection) -> int:
    """The version of the stored reference data: the change log's newest sequence number (0 before any load)."""
    return int(connection.execute(sa_select(func.max(CHANGE.c.seq))).scalar() or 0)


def school_of_row(row: Any) -> School:
    return School(row.urn, row.name, row.la_code, row.in_area, row.school_type,
                  Contact(row.dsl_email, row.dsl_phone), Contact(row.deputy_email, row.deputy_phone))


def current_schools(connection: Connection) -> dict[str, School]:
    return {row.urn: school_of_row(row) for row in connection.execute(
        sa_select(SCHOOL).where(SCHOOL.c.ended_at.is_(None)))}


def current_directory(connection: Connection) -> Directory:
    return Directory({row.team: Contact(row.email, row.phone) for row in connection.execute(
        sa_select(TEAM_CONTACT).where(TEAM_CONTACT.c.ended_at.is_(None)))})


def teams_of_people(connection: Connection) -> dict[str, dict[str, str]]:
    """Role -> email -> the lowest team among the open involvements naming that person in that role."""
    found: dict[str, dict[str, str]] = {}
    for role, name in PERSON_COLUMNS.items():
        person = INVOLVEMENT.c[name]
        found[role] = {row.email: row.team for row in connection.execute(
            sa_select(person.label("email"), func.min(INVOLVEMENT.c.team).label("team"))
            .where(INVOLVEMENT.c.ended_at.is_(None), INVOLVEMENT.c.team.is_not(None), person.is_not(None))
            .group_by(person))}
    return found


@dataclass(frozen=True)
class ReferenceSnapshot:
    """The reference data of one version, read-only (shared by every thread of the process)."""

    version: int
    schools: Mapping[str, School] = field(default_factory=dict)
    directory: Directory = field(default_factory=Directory)
    people: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # role -> email -> team

    def school(self, urn: str) -> School | None:
        return self.schools.get(urn)

    def team_of_person(self, role: str, email: str) -> str | None:
        return self.people.get(role, {}).get(email)


def changed_kinds(connection: Connection, after: int, upto: int) -> set[str]:
    """The kinds of reference data loads changed after version ``after``, up to ``upto``."""
    return set(connection.execute(sa_select(CHANGE.c.kind).distinct()
                                  .where(CHANGE.c.seq > after, CHANGE.c.seq <= upto)).scalars())


def read_snapshot(connection: Connection, version: int, previous: ReferenceSnapshot | None = None) -> ReferenceSnapshot:
    """The snapshot of ``version`` (what ``connection`` sees): from ``previous`` with only the parts whose kinds
    changed since read again, or read whole when there is no older one to start from."""
    if previous is None or previous.version > version:
        kinds = {"schools", "teams", "involvements"}
    else:
        kinds = changed_kinds(connection, previous.version, version)
    return ReferenceSnapshot(
        version,
        current_schools(connection) if "schools" in kinds or previous is None else previous.schools,
        current_directory(connection) if "teams" in kinds or previous is None else previous.directory,
        teams_of_people(connection) if "involvements" in kinds or previous is None else previous.people,
    )


class ReferenceCache:
    """The process's snapshot (one per database: ``Store.reference``), replaced when the stored version moves."""

    def __init__(self) -> None:
        self._snapshot: ReferenceSnapshot | None = None
        self._lock = threading.Lock()
        self.reads = 0  # snapshots read from the store (the version check's misses), for tests and profiles

    @property
    def version(self) -> int | None:
        """The version held, or None before the first read."""
        return None if self._snapshot is None else self._snapshot.version

    def snapshot(self, connection: Connection, version: int) -> ReferenceSnapshot:
        """The snapshot of ``version``, the version ``connection``'s transaction sees: the one held when it
        matches, else read through ``connection`` (and held, unless an older transaction asked for an older one)."""
        held = self._snapshot
        if held is not None and held.version == version:
            return held
        with self._lock:  # one thread reads a new version while the others wait for it
            held = self._snapshot
            if held is not None and held.version == version:
                return held
            fresh = read_snapshot(connection, version, held)
            self.reads += 1
            if held is None or fresh.version > held.version:
                self._snapshot = fresh
            return fresh
