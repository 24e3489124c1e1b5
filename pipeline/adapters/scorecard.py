"""The partnership's scorecard, computed by SQL queries from the records (deadlines, notifications,
missing episodes, audit entries), never from counters kept on the side.

Every measure of domain.md's "Records" table, for a period of London calendar days, for the whole
partnership (group ``ALL``) and per school, per team or per financial-year quarter. The definitions are
written out, one paragraph per measure, in docs/SCORECARD.md; the queries here are those definitions.
The same SQL runs on SQLite and PostgreSQL: only a few small expressions are written per dialect (seconds
since 1970 of an instant, an instant plus 30 days, the code-point collation of the smallest school or team
code, and a planner hint for SQLite).

Every measure is summed per group in the database: each child's school or team is put once per request in a
temporary table (``CHILD_GROUP_TABLE``) that the queries join; the four deadline ratios come from one range
scan of the period's deadlines and the median time to acknowledge from another; for ``by=school`` and ``by=team`` the
partnership's row is the sum of the groups' rows (each case is in exactly one group).

Groups: a case's school is the school a school alert was addressed to (the deadline's ``school_urn``),
otherwise the school of the child's current roll record (``NONE`` when there is none); a case's team is
the team of the child's current social-care involvement (``UNALLOCATED`` when there is none, or when the
event was never linked to a child).

The evaluation instant ``as_of`` is the period's end, or now if that is earlier: a deadline still open then
counts as not on time once it is overdue, and is left out while it is not yet due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, bindparam, text
from sqlmodel import Session

from pipeline.adapters.tables import UTCDateTime

ALL = "ALL"
NO_SCHOOL = "NONE"
NO_TEAM = "UNALLOCATED"
GROUPINGS = ("school", "team", "quarter")

# Ratio measures: (API key, deadline kind) for the four "done by the deadline" measures.
DEADLINE_MEASURES = {
    "ack_on_time": "self_harm_acknowledgement",
    "trigger_meeting_on_time": "trigger_meeting",
    "reviews_on_time": "match_review",
    "withheld_decided_on_time": "consent_decision",
}
RATIO_MEASURES = ("ack_on_time", "rhi_within_72h", "rhi_offered", "trigger_meeting_on_time", "reviews_on_time",
                  "withheld_decided_on_time")
MEASURES = ("ack_on_time", "median_minutes_to_ack", "rhi_within_72h", "rhi_offered", "trigger_meeting_on_time",
            "repeat_missing_children", "reviews_on_time", "withheld_decided_on_time", "open_escalations",
            "delivery_failures")
ESCALATION_LEVELS = ("1", "2", "3")
# Deadlines the sweep uses for its own checks: nobody owns them, so they are never an open escalation.
INTERNAL_KINDS = ("episode_length_check",)
RHI_OFFERED_OUTCOMES = ("COMPLETED", "DECLINED", "NOT_POSSIBLE")
REPEAT_EPISODES, REPEAT_WINDOW_DAYS = 3, 30
# The audit reason the relay writes, once, when every channel has failed (pipeline.service.notify.undelivered).
UNDELIVERED_REASON = "no channel delivered it"


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from London calendar days; ``as_of`` = min(end, now)."""

    label: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime
    as_of: datetime


def period(first_day: date, last_day: date, now: datetime, tz: ZoneInfo, label: str = ALL) -> Period:
    start = datetime.combine(first_day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return Period(label, first_day, last_day, start, end, min(end, now))


def quarter_of(day: date) -> tuple[int, int]:
    """(financial year starting April, quarter 1-4): April-June is Q1, January-March is Q4."""
    year = day.year if day.month >= 4 else day.year - 1
    return year, (day.month - 4) % 12 // 3 + 1


def quarter_label(day: date) -> str:
    year, quarter = quarter_of(day)
    return f"{year}-{(year + 1) % 100:02d} Q{quarter}"


def quarter_bounds(day: date) -> tuple[date, date]:
    year, quarter = quarter_of(day)
    first_month = 4 + 3 * (quarter - 1)
    first = date(year + (first_month - 1) // 12, (first_month - 1) % 12 + 1, 1)
    after_month = first_month + 3
    after = date(year + (after_month - 1) // 12, (after_month - 1) % 12 + 1, 1)
    return first, after - timedelta(days=1)


def quarters(first_day: date, last_day: date) -> list[tuple[str, date, date]]:
    """The financial quarters overlapping [first_day, last_day], each clipped to it."""
    found = []
    day = first_day
    while day <= last_day:
        q_first, q_last = quarter_bounds(day)
        found.append((quarter_label(day), max(q_first, first_day), min(q_last, last_day)))
        day = q_last + timedelta(days=1)
    return found


@dataclass
class Ratio:
    numerator: int = 0
    denominator: int = 0

    @property
    def value(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator, "value": self.value}


@dataclass
class Median:
    value: float | None = None
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count}


@dataclass
class ScoreRow:
    group: str
    ratios: dict[str, Ratio] = field(default_factory=lambda: {key: Ratio() for key in RATIO_MEASURES})
    median_minutes_to_ack: Median = field(default_factory=Median)
    repeat_missing_children: int = 0
    open_escalations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ESCALATION_LEVELS, 0))
    delivery_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"group": self.group}
        for key in MEASURES:
            if key in self.ratios:
                body[key] = self.ratios[key].as_dict()
        body["median_minutes_to_ack"] = self.median_minutes_to_ack.as_dict()
        body["repeat_missing_children"] = self.repeat_missing_children
        body["open_escalations"] = dict(self.open_escalations)
        body["delivery_failures"] = self.delivery_failures
        return {key: body[key] for key in ("group", *MEASURES)}


CSV_COLUMNS = ("group", *(f"{key}_{part}" for key in RATIO_MEASURES for part in ("numerator", "denominator", "value")),
               "median_minutes_to_ack", "median_minutes_to_ack_count", "repeat_missing_children",
               *(f"open_escalations_level_{level}" for level in ESCALATION_LEVELS), "delivery_failures")


def csv_row(row: dict[str, Any]) -> list[Any]:
    """One scorecard row (as_dict) flattened in CSV_COLUMNS order."""
    cells: list[Any] = [row["group"]]
    for key in RATIO_MEASURES:
        cells += [row[key]["numerator"], row[key]["denominator"], row[key]["value"]]
    cells += [row["median_minutes_to_ack"]["value"], row["median_minutes_to_ack"]["count"],
              row["repeat_missing_children"], *(row["open_escalations"][lv] for lv in ESCALATION_LEVELS),
              row["delivery_failures"]]
    return cells


# ---- SQL -----------------------------------------------------------------------------------------------------

def _epoch_seconds(postgres: bool, column: str) -> str:
    """Whole seconds since 1970 of an instant column (the fraction dropped), the same on both dialects."""
    if postgres:
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _plus_window(postgres: bool, column: str) -> str:
    """``column`` + 30 days, in SQL: the one expression written per dialect."""
    if postgres:
        return f"({column} + INTERVAL '{REPEAT_WINDOW_DAYS} days')"
    # SQLite keeps instants as 'YYYY-MM-DD HH:MM:SS.ffffff' text: datetime() drops the fraction, put it back.
    return f"(datetime({column}, '+{REPEAT_WINDOW_DAYS} days') || substr({column}, 20))"


ROLL_DAY = "roll_day"  # the bind parameter of ``on_roll_first``: a London day, bound as a date (``roll_day``)


def on_roll_first(alias: str) -> str:
    """SQL: '0' for a roll record (``alias``) whose pupil is on the roll on the day bound as ``:roll_day``
    (``domain.model.on_roll``), else '1'. Put before a school's URN, the smallest of a child's records is a school
    the child is on the roll of that day, if any: a child who moved school has the old school's row (ended by
    ``on_roll_to``) too, and one joining a school has its row before the day it starts."""
    return (f"CASE WHEN ({alias}.on_roll_from IS NULL OR {alias}.on_roll_from <= :{ROLL_DAY}) AND "
            f"({alias}.on_roll_to IS NULL OR {alias}.on_roll_to >= :{ROLL_DAY}) THEN '0' ELSE '1' END")


def roll_day() -> Any:
    """The ``:roll_day`` parameter, typed: a date on both dialects (SQLite keeps dates as ISO text)."""
    return bindparam(ROLL_DAY, type_=Date())


# The child's current school (roll record) and team (social-care involvement), from its person key. Each
# branch scans the (bounded) reference table and finds the child by its unique person key. ``grp`` is the code
# after a one-character rank (``on_roll_first``; '0' for a team), which ``_child_group_rows`` takes off.
CHILD_SCHOOL_SQL = f"""
SELECT c.child_id AS child_id, {on_roll_first("p")} || p.school_urn AS grp FROM pupil p
 JOIN child c ON c.person_key = 'upn' || :colon || p.upn
 WHERE p.ended_at IS NULL
UNION ALL
SELECT c.child_id, {on_roll_first("p")} || p.school_urn FROM pupil p
 JOIN child c ON c.person_key = 'nhs' || :colon || p.nhs_number
 WHERE p.ended_at IS NULL AND p.nhs_number IS NOT NULL"""
CHILD_TEAM_SQL = """
SELECT c.child_id AS child_id, '0' || i.team AS grp FROM involvement i
 JOIN child c ON c.person_key = 'upn' || :colon || i.upn
 WHERE i.ended_at IS NULL AND i.team IS NOT NULL AND i.upn IS NOT NULL
UNION ALL
SELECT c.child_id, '0' || i.team FROM involvement i JOIN child c ON c.person_key = 'nhs' || :colon || i.nhs_number
 WHERE i.ended_at IS NULL AND i.team IS NOT NULL AND i.nhs_number IS NOT NULL
UNION ALL
SELECT c.child_id, '0' || i.team FROM involvement i JOIN child c ON c.person_key = 'involvement' || :colon || i.row_key
 WHERE i.ended_at IS NULL AND i.team IS NOT NULL"""


def _child_group_rows(by: str) -> str:
    """One row per child the reference data places: its school (URN) or team, the smallest code when it has
    several (compared code point by code point on both dialects), a school it is on the roll of today first."""
    return f"SELECT child_id, substr(MIN(grp), 2) AS grp FROM " \
           f"({CHILD_SCHOOL_SQL if by == 'school' else CHILD_TEAM_SQL}) placed GROUP BY child_id"


def _instants(*names: str) -> list[Any]:
    return [bindparam(name, type_=UTCDateTime()) for name in names]


def _instant(value: Any) -> datetime:
    """A stored instant read through raw SQL (text on SQLite, naive on PostgreSQL): aware UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC)


# A per-request temporary table: each child's school or team, so every query joins it and sums its cases
# into groups in the database. Created inside the request's transaction, emptied before use and dropped
# after it (the transaction's rollback removes it too).
CHILD_GROUP_TABLE = "scorecard_child_group"


class ScorecardQueries:
    """The queries, for one session (SQLite or PostgreSQL).

    Each query sums its cases per group in SQL: the partnership's row has no grouping; a school or team is
    found by joining the child's school or team (``CHILD_GROUP_TABLE``, filled once per request), a school
    the case names (a school alert's URN) coming first.
    """

    def __init__(self, session: Session, postgres: bool, placed_on: date | None = None) -> None:
        self.session = session
        self.postgres = postgres
        # The London day whose school rolls place a child at a school (the grouped queries): the period's end,
        # or today if that is earlier.
        self.placed_on = placed_on
        self._placed: set[str] = set()
        # {group: {seconds: how many}}: the acknowledged school alerts' times of the last deadline_rows call.
        self.ack_seconds: dict[str, dict[int, int]] = {}

    def _rows(self, sql: str, params: dict[str, Any], instants: Iterable[str]) -> Sequence[Any]:
        statement = text(sql).bindparams(*_instants(*instants))
        return self.session.connection().execute(statement, params).all()

    def _period_rows(self, sql: str, p: Period) -> Sequence[Any]:
        return self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))

    def place_children(self, by: str) -> None:
        """Fill the temporary table with each child's school or team (once per request and grouping)."""
        if by in self._placed:
            return
        connection = self.session.connection()
        # PostgreSQL compares text by the database's collation; Python (and SQLite) by code point.
        grp = "grp COLLATE \"C\"" if self.postgres else "grp"
        connection.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {CHILD_GROUP_TABLE} "
                                f"(child_id VARCHAR NOT NULL PRIMARY KEY, grp VARCHAR NOT NULL)"))
        connection.execute(text(f"DELETE FROM {CHILD_GROUP_TABLE}"))
        placed = _child_group_rows(by).replace("MIN(grp)", f"MIN({grp})")
        statement = text(f"INSERT INTO {CHILD_GROUP_TABLE} (child_id, grp) {placed}")
        params: dict[str, Any] = {"colon": ":"}
        if by == "school":  # only the schools' rows are ranked by the day's roll
            if self.placed_on is None:
                raise ValueError("grouping by school needs the day whose rolls place a child (placed_on)")
            statement = statement.bindparams(roll_day())
            params[ROLL_DAY] = self.placed_on
        connection.execute(statement, params)
        self._placed = {by}

    def close(self) -> None:
        if self._placed:
            self.session.connection().execute(text(f"DROP TABLE IF EXISTS {CHILD_GROUP_TABLE}"))
            self._placed = set()

    def _group(self, by: str | None, child: str, school: str | None = None) -> tuple[str, str, str]:
        """(group expression, join, GROUP BY) for a query whose case has the child ``child`` (a column) and,
        for a school alert, the school ``school``: no group for the partnership's row; the school the case
        names, else the child's school (``NONE`` when there is none); the child's team (``UNALLOCATED``)."""
        if by is None:
            return "NULL", "", ""
        self.place_children(by)
        fallback = NO_SCHOOL if by == "school" else NO_TEAM
        placed = "NULLIF(cg.grp, '')"
        named = f"NULLIF({school}, ''), " if by == "school" and school else ""
        expression = f"COALESCE({named}{placed}, '{fallback}')"
        join = f" LEFT JOIN {CHILD_GROUP_TABLE} cg ON cg.child_id = {child}"
        return expression, join, f" GROUP BY {expression}"

    @staticmethod
    def _label(by: str | None, p: Period, group: str | None) -> str:
        return p.label if by is None else str(group)

    def deadline_rows(self, p: Period, by: str | None) -> tuple[list[tuple[str, str, int, int]], dict[str, Median]]:
        """The period's deadlines of the four done-by-the-deadline kinds, summed per kind and group in SQL:
        (measure, group, numerator, denominator) rows; and per group the median minutes from each
        acknowledged school alert's deadline creation to its closing (in whole seconds: each instant's
        fraction of a second dropped), from one row per distinct (group, seconds) with its count.

        Two index-only range scans of the scorecard index: measured on a synthetic year, cheaper than one
        pass grouped by kind, group and seconds together (which sorts every deadline)."""
        group, join, _ = self._group(by, "d.child_id", "d.school_urn")
        kinds = ", ".join(f"'{kind}'" for kind in DEADLINE_MEASURES.values())
        elapsed = f"{_epoch_seconds(self.postgres, 'd.closed_at')} - {_epoch_seconds(self.postgres, 'd.created_at')}"
        ratio_sql = f"""
SELECT kind, grp, SUM(on_time) AS num, SUM(counted) AS den FROM (
SELECT d.kind AS kind, {group} AS grp,
       CASE WHEN d.closed_at IS NOT NULL AND d.closed_at <= d.due_at AND d.closed_at <= :as_of
            THEN 1 ELSE 0 END AS on_time,
       CASE WHEN (d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of
            THEN 1 ELSE 0 END AS counted
  FROM deadline d{join}
 WHERE d.kind IN ({kinds}) AND d.due_at >= :start AND d.due_at < :end) period_deadline
 GROUP BY kind, grp"""
        seconds_sql = f"""
SELECT grp, seconds, COUNT(*) AS cases FROM (
SELECT {group} AS grp, {elapsed} AS seconds
  FROM deadline d{join}
 WHERE d.kind = 'self_harm_acknowledgement' AND d.due_at >= :start AND d.due_at < :end
   AND d.closed_at IS NOT NULL AND d.closed_at <= :as_of) acknowledged
 GROUP BY grp, seconds"""
        measure_of = {kind: key for key, kind in DEADLINE_MEASURES.items()}
        ratios: dict[tuple[str, str], list[int]] = {}
        for row in self._period_rows(ratio_sql, p):
            sums = ratios.setdefault((measure_of[row.kind], self._label(by, p, row.grp)), [0, 0])
            sums[0] += int(row.num or 0)
            sums[1] += int(row.den or 0)
        seconds: dict[str, dict[int, int]] = {}
        for row in self._period_rows(seconds_sql, p):
            counted = seconds.setdefault(self._label(by, p, row.grp), {})
            counted[int(row.seconds)] = counted.get(int(row.seconds), 0) + int(row.cases)
        self.ack_seconds = seconds
        medians = {label: _median(counted) for label, counted in seconds.items()}
        return [(measure, label, num, den) for (measure, label), (num, den) in ratios.items()], medians

    def deadline_ratios(self, p: Period, by: str | None) -> list[tuple[str, str, int, int]]:
        """(measure, group, numerator, denominator) for the four done-by-the-deadline measures."""
        return self.deadline_rows(p, by)[0]

    def return_interviews(self, p: Period, by: str | None) -> list[tuple[str, int, int, int]]:
        """(group, completed by the deadline, completed/declined/not possible, episodes counted).

        The episodes found in the period first (``ix_missingepisode_found_at``), then each one's deadline by the
        unique (kind, subject): ``CROSS JOIN`` makes SQLite keep that order (PostgreSQL plans it as any inner join).
        Joined the other way round, SQLite without statistics took every return-interview deadline ever stored
        (``kind = 'return_interview'``) and looked each episode up, so the cost grew with history, not the period."""
        group, join, group_by = self._group(by, "e.child_id")
        offered = ", ".join(f"'{outcome}'" for outcome in RHI_OFFERED_OUTCOMES)
        sql = f"""
SELECT {group} AS grp,
       SUM(CASE WHEN e.return_interview_outcome = 'COMPLETED' AND d.closed_at IS NOT NULL
                 AND d.closed_at <= :as_of AND e.return_interview_recorded_at <= d.due_at
                THEN 1 ELSE 0 END) AS on_time,
       SUM(CASE WHEN e.return_interview_outcome IN ({offered}) AND d.closed_at IS NOT NULL
                 AND d.closed_at <= :as_of THEN 1 ELSE 0 END) AS offered,
       SUM(CASE WHEN (d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of
                THEN 1 ELSE 0 END) AS den
  FROM missingepisode e
 CROSS JOIN deadline d{join}
 WHERE d.kind = 'return_interview' AND d.subject_id = e.episode_id
   AND e.found_at >= :start AND e.found_at < :end AND e.found_at <= :as_of{group_by}"""
        return [(self._label(by, p, row.grp), int(row.on_time or 0), int(row.offered or 0), int(row.den or 0))
                for row in self._period_rows(sql, p) if row.den is not None]

    def repeat_missing_children(self, p: Period, by: str | None) -> dict[str, int]:
        later = _plus_window(self.postgres, "e1.reported_at")
        group, join, group_by = self._group(by, "repeat.child_id")
        sql = f"""
SELECT {group} AS grp, COUNT(*) AS children FROM (
SELECT DISTINCT e1.child_id AS child_id FROM missingepisode e1
  JOIN missingepisode e2 ON e2.child_id = e1.child_id AND e2.reported_at >= e1.reported_at
   AND e2.reported_at <= {later} AND e2.reported_at < :end AND e2.reported_at <= :as_of
 WHERE e1.child_id IS NOT NULL AND e1.reported_at >= :start AND e1.reported_at < :end
   AND e1.reported_at <= :as_of
 GROUP BY e1.child_id, e1.episode_id HAVING COUNT(*) >= {REPEAT_EPISODES}) repeat{join}{group_by}"""
        return {self._label(by, p, row.grp): int(row.children) for row in self._period_rows(sql, p)
                if row.children}

    def open_escalations(self, p: Period, by: str | None) -> dict[str, dict[str, int]]:
        """Deadlines open at ``as_of`` whose ladder had fired at least one step by then, by level (3 = 3+).

        The level at an instant is the number of `escalated` audit entries the sweep wrote for the deadline
        up to it (the deadline row only holds its level now)."""
        internal = ", ".join(f"'{kind}'" for kind in INTERNAL_KINDS)
        group, join, group_by = self._group(by, "d.child_id", "d.school_urn")
        level = ("(SELECT COUNT(*) FROM auditentry a WHERE a.subject_id = d.id AND a.action = 'escalated'"
                 " AND a.at <= :as_of)")
        # Open at as_of: never closed, or closed later; two disjoint branches, each a range of the index on
        # (closed_at, escalation_level, ...).
        still_open = " UNION ALL ".join(
            f"SELECT {group} AS grp, {level} AS level FROM deadline d{join} WHERE {closing} AND "
            f"d.escalation_level > 0 AND d.kind NOT IN ({internal}) AND d.created_at <= :as_of"
            for closing in ("d.closed_at IS NULL", "d.closed_at > :as_of"))
        sql = f"""
SELECT grp, CASE WHEN level >= 3 THEN 3 ELSE level END AS level, COUNT(*) AS n FROM (
{still_open}) open_deadline
 WHERE level > 0
 GROUP BY grp, CASE WHEN level >= 3 THEN 3 ELSE level END"""
        levels: dict[str, dict[str, int]] = {}
        for row in self._rows(sql, {"as_of": p.as_of}, ("as_of",)):
            counts = levels.setdefault(self._label(by, p, row.grp), dict.fromkeys(ESCALATION_LEVELS, 0))
            counts[str(int(row.level))] += int(row.n)
        return levels

    def delivery_failures(self, p: Period, by: str | None) -> dict[str, int]:
        """Notifications created in the period that no channel delivered: the relay recorded it (an audit entry
        `failed` "no channel delivered it", written once when every channel has failed) by ``as_of``, and no
        delivery was recorded by then."""
        group, join, group_by = self._group(by, "ev.child_id", "n.school_urn")
        # Not delivered by as_of: never delivered, or delivered later; two disjoint branches, each a range of
        # the index on (delivered_at, created_at), so only the few undelivered notifications are read.
        # (SQLite's planner, without statistics, would rather range over created_at alone: a unary plus on the
        # column in the second branch keeps it on the delivered_at index; PostgreSQL plans by its statistics.)
        created = "u.created_at" if self.postgres else "+u.created_at"
        undelivered = " UNION ALL ".join(
            f"SELECT u.id AS id, u.event_id AS event_id, u.school_urn AS school_urn FROM notification u "
            f"WHERE {delivery} AND {at} >= :start AND {at} < :end AND {at} <= :as_of"
            for delivery, at in (("u.delivered_at IS NULL", "u.created_at"), ("u.delivered_at > :as_of", created)))
        sql = f"""
SELECT {group} AS grp, COUNT(*) AS failures
  FROM ({undelivered}) n LEFT JOIN event ev ON ev.event_id = n.event_id{join}
 WHERE EXISTS (SELECT 1 FROM auditentry a WHERE a.subject_id = n.id AND a.action = 'failed' AND a.at <= :as_of
                 AND a.reason LIKE '{UNDELIVERED_REASON}%'){group_by}"""
        return {self._label(by, p, row.grp): int(row.failures) for row in self._period_rows(sql, p)
                if row.failures}

    # ---- one period, grouped ------------------------------------------------------------------------------

    def rows(self, p: Period, by: str | None) -> dict[str, ScoreRow]:
        """Every measure for one period, per group of ``by`` (None: one row, the period's own label)."""
        found: dict[str, ScoreRow] = {}

        def row(group: str) -> ScoreRow:
            return found.setdefault(group, ScoreRow(group))

        ratios, medians = self.deadline_rows(p, by)
        for measure, group, numerator, denominator in ratios:
            ratio = row(group).ratios[measure]
            ratio.numerator += numerator
            ratio.denominator += denominator
        for group, median in medians.items():
            row(group).median_minutes_to_ack = median
        for group, on_time, offered, denominator in self.return_interviews(p, by):
            within, any_outcome = row(group).ratios["rhi_within_72h"], row(group).ratios["rhi_offered"]
            within.numerator += on_time
            within.denominator += denominator
            any_outcome.numerator += offered
            any_outcome.denominator += denominator
        for group, children in self.repeat_missing_children(p, by).items():
            row(group).repeat_missing_children = children
        for group, levels in self.open_escalations(p, by).items():
            row(group).open_escalations = levels
        for group, failures in self.delivery_failures(p, by).items():
            row(group).delivery_failures = failures
        if not by:
            row(p.label)  # the period's row exists even when nothing happened in it
        return {group: item for group, item in found.items() if by is None or _has_cases(item)}

    def grouped_and_total(self, p: Period, by: str) -> tuple[dict[str, ScoreRow], ScoreRow]:
        """The period's rows per school or team, and the partnership's row summed from them: every case falls
        in exactly one group (its school or team, else ``NONE``/``UNALLOCATED``), so each count is the sum
        of the groups' counts and the median is that of the groups' times put together."""
        grouped = self.rows(p, by)
        total = ScoreRow(p.label)
        seconds: dict[int, int] = {}
        for group, item in grouped.items():
            for key, ratio in item.ratios.items():
                total.ratios[key].numerator += ratio.numerator
                total.ratios[key].denominator += ratio.denominator
            for value, count in self.ack_seconds.get(group, {}).items():
                seconds[value] = seconds.get(value, 0) + count
            total.repeat_missing_children += item.repeat_missing_children
            for level, count in item.open_escalations.items():
                total.open_escalations[level] += count
            total.delivery_failures += item.delivery_failures
        if seconds:
            total.median_minutes_to_ack = _median(seconds)
        return grouped, total


def _median(counted: dict[int, int]) -> Median:
    """The median minutes (rounded to a tenth) of whole seconds given as {seconds: how many}."""
    total = sum(counted.values())
    ordered = sorted(counted)

    def nth(index: int) -> int:
        seen = 0
        for seconds in ordered:
            seen += counted[seconds]
            if index < seen:
                return seconds
        raise IndexError(index)

    middle = (nth((total - 1) // 2) + nth(total // 2)) / 2 / 60
    return Median(round(middle, 1), total)


def _has_cases(row: ScoreRow) -> bool:
    return bool(any(r.denominator for r in row.ratios.values()) or row.median_minutes_to_ack.count
                or row.repeat_missing_children or any(row.open_escalations.values()) or row.delivery_failures)


def scorecard(session: Session, postgres: bool, first_day: date, last_day: date, by: str, now: datetime,
              tz: ZoneInfo) -> list[dict[str, Any]]:
    """The scorecard for [first_day, last_day] (London days): one row per group of ``by`` (school, team or
    financial quarter), sorted, then the whole partnership's row with group ``ALL``."""
    if by not in GROUPINGS:
        raise ValueError("by must be school, team or quarter")
    whole = period(first_day, last_day, now, tz)
    queries = ScorecardQueries(session, postgres, whole.as_of.astimezone(tz).date())
    try:
        if by == "quarter":
            groups = [queries.rows(period(q_first, q_last, now, tz, label), None)[label]
                      for label, q_first, q_last in quarters(first_day, last_day)]
            total = queries.rows(whole, None)[ALL]
        else:
            grouped, total = queries.grouped_and_total(whole, by)
            groups = [grouped[key] for key in sorted(grouped)]
    finally:
        queries.close()
    return [row.as_dict() for row in (*groups, total)]



@dataclass(frozen=True)
class Case:
    """One case behind a ratio: counted in the denominator, and in the numerator when ``counted``."""

    deadline_id: str
    kind: str
    child_id: str | None
    due_at: datetime
    done_at: datetime | None
    counted: bool


def cases_behind(session: Session, measure: str, p: Period, limit: int = 500) -> list[Case]:
    """The cases behind a ratio measure for a period (the partnership's row), oldest due first: the same
    conditions as the measure's query, one row per case."""
    if measure in DEADLINE_MEASURES:
        sql = """
SELECT d.id AS id, d.kind AS kind, d.child_id AS child_id, d.due_at AS due_at, d.closed_at AS done_at,
       CASE WHEN d.closed_at IS NOT NULL AND d.closed_at <= d.due_at AND d.closed_at <= :as_of
            THEN 1 ELSE 0 END AS counted
  FROM deadline d
 WHERE d.kind = :kind AND d.due_at >= :start AND d.due_at < :end
   AND ((d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of)
 ORDER BY d.due_at, d.id LIMIT :limit"""
        params: dict[str, Any] = {"kind": DEADLINE_MEASURES[measure]}
    elif measure in ("rhi_within_72h", "rhi_offered"):
        offered = ", ".join(f"'{outcome}'" for outcome in RHI_OFFERED_OUTCOMES)
        numerator = ("e.return_interview_outcome = 'COMPLETED' AND e.return_interview_recorded_at <= d.due_at"
                     if measure == "rhi_within_72h" else f"e.return_interview_outcome IN ({offered})")
        sql = f"""
SELECT d.id AS id, d.kind AS kind, e.child_id AS child_id, d.due_at AS due_at, d.closed_at AS done_at,
       CASE WHEN {numerator} AND d.closed_at IS NOT NULL AND d.closed_at <= :as_of THEN 1 ELSE 0 END AS counted
  FROM missingepisode e
  JOIN deadline d ON d.kind = 'return_interview' AND d.subject_id = e.episode_id
 WHERE e.found_at >= :start AND e.found_at < :end AND e.found_at <= :as_of
   AND ((d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of)
 ORDER BY d.due_at, d.id LIMIT :limit"""
        params = {}
    else:
        raise ValueError("cases are listed for the ratio measures only")
    statement = text(sql).bindparams(*_instants("start", "end", "as_of"))
    rows = session.connection().execute(statement, {"start": p.start, "end": p.end, "as_of": p.as_of,
                                                    "limit": limit, **params}).all()
    return [Case(row.id, row.kind, row.child_id, _instant(row.due_at),
                 _instant(row.done_at) if row.done_at is not None else None, bool(row.counted)) for row in rows]
