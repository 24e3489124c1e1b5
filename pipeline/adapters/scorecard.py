"""The partnership's scorecard, computed by SQL queries from the records (deadlines, notifications,
missing episodes, audit entries), never from counters kept on the side.

Every measure of domain.md's "Records" table, for a period of London calendar days, for the whole
partnership (group ``ALL``) and per school, per team or per financial-year quarter. The definitions are
written out, one paragraph per measure, in docs/SCORECARD.md; the queries here are those definitions.
The same SQL runs on SQLite and PostgreSQL: only two small expressions (minutes between two instants, an
instant plus 30 days) are written per dialect.

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

from sqlalchemy import bindparam, text
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

def _dialect_sql(postgres: bool) -> dict[str, str]:
    if postgres:
        return {"minutes": "(EXTRACT(EPOCH FROM ({a} - {b})) / 60.0)",
                "plus_window": f"({{x}} + INTERVAL '{REPEAT_WINDOW_DAYS} days')"}
    # SQLite keeps instants as 'YYYY-MM-DD HH:MM:SS.ffffff' text: datetime() drops the fraction, put back.
    return {"minutes": "((julianday({a}) - julianday({b})) * 1440.0)",
            "plus_window": f"(datetime({{x}}, '+{REPEAT_WINDOW_DAYS} days') || substr({{x}}, 20))"}


# The child's current school (roll record) and team (social-care involvement), from its person key.
CHILD_SCHOOL = """child_school AS (
  SELECT c.child_id AS child_id, MIN(p.school_urn) AS school FROM child c
    JOIN pupil p ON p.upn = substr(c.person_key, 5) AND p.ended_at IS NULL
   WHERE c.person_key LIKE 'upn:%' GROUP BY c.child_id
  UNION ALL
  SELECT c.child_id, MIN(p.school_urn) FROM child c
    JOIN pupil p ON p.nhs_number = substr(c.person_key, 5) AND p.ended_at IS NULL
   WHERE c.person_key LIKE 'nhs:%' GROUP BY c.child_id
)"""
CHILD_TEAM = """child_team AS (
  SELECT c.child_id AS child_id, MIN(i.team) AS team FROM child c
    JOIN involvement i ON i.upn = substr(c.person_key, 5) AND i.ended_at IS NULL AND i.team IS NOT NULL
   WHERE c.person_key LIKE 'upn:%' GROUP BY c.child_id
  UNION ALL
  SELECT c.child_id, MIN(i.team) FROM child c
    JOIN involvement i ON i.nhs_number = substr(c.person_key, 5) AND i.ended_at IS NULL AND i.team IS NOT NULL
   WHERE c.person_key LIKE 'nhs:%' GROUP BY c.child_id
  UNION ALL
  SELECT c.child_id, MIN(i.team) FROM child c
    JOIN involvement i ON i.row_key = substr(c.person_key, 13) AND i.ended_at IS NULL AND i.team IS NOT NULL
   WHERE c.person_key LIKE 'involvement:%' GROUP BY c.child_id
)"""


@dataclass(frozen=True)
class Grouping:
    """How a case row becomes a group: the CTEs and joins it needs, and the group expression."""

    with_sql: str
    join_sql: str
    group_sql: str


def grouping(by: str | None, child: str, school: str | None = None) -> Grouping:
    """``child`` is the SQL expression of the case's child id; ``school`` that of a school it names itself."""
    if by == "school":
        own = f"COALESCE({school}, cs.school, '{NO_SCHOOL}')" if school else f"COALESCE(cs.school, '{NO_SCHOOL}')"
        return Grouping(f"WITH {CHILD_SCHOOL}", f"LEFT JOIN child_school cs ON cs.child_id = {child}", own)
    if by == "team":
        return Grouping(f"WITH {CHILD_TEAM}", f"LEFT JOIN child_team ct ON ct.child_id = {child}",
                        f"COALESCE(ct.team, '{NO_TEAM}')")
    return Grouping("", "", f"'{ALL}'")


def _instants(*names: str) -> list[Any]:
    return [bindparam(name, type_=UTCDateTime()) for name in names]


class ScorecardQueries:
    """The queries, for one session (SQLite or PostgreSQL)."""

    def __init__(self, session: Session, postgres: bool) -> None:
        self.session = session
        self.sql = _dialect_sql(postgres)

    def _rows(self, sql: str, params: dict[str, Any], instants: Iterable[str]) -> Sequence[Any]:
        statement = text(sql).bindparams(*_instants(*instants))
        return self.session.connection().execute(statement, params).all()

    def deadline_ratios(self, p: Period, by: str | None) -> list[tuple[str, str, int, int]]:
        """(measure, group, numerator, denominator) for the four done-by-the-deadline measures."""
        g = grouping(by, "d.child_id", "d.school_urn")
        kinds = ", ".join(f"'{kind}'" for kind in DEADLINE_MEASURES.values())
        sql = f"""{g.with_sql}
SELECT d.kind AS kind, {g.group_sql} AS grp,
       SUM(CASE WHEN d.closed_at IS NOT NULL AND d.closed_at <= d.due_at AND d.closed_at <= :as_of
                THEN 1 ELSE 0 END) AS num,
       SUM(CASE WHEN (d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of
                THEN 1 ELSE 0 END) AS den
  FROM deadline d {g.join_sql}
 WHERE d.kind IN ({kinds}) AND d.due_at >= :start AND d.due_at < :end
 GROUP BY d.kind, grp"""
        measure_of = {kind: key for key, kind in DEADLINE_MEASURES.items()}
        rows = self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))
        return [(measure_of[row.kind], row.grp, int(row.num or 0), int(row.den or 0)) for row in rows]

    def median_minutes_to_ack(self, p: Period, by: str | None) -> dict[str, Median]:
        g = grouping(by, "d.child_id", "d.school_urn")
        minutes = self.sql["minutes"].format(a="d.closed_at", b="d.created_at")
        cte = f"{g.with_sql}, " if g.with_sql else "WITH "
        sql = f"""{cte}acked AS (
  SELECT {g.group_sql} AS grp, {minutes} AS minutes FROM deadline d {g.join_sql}
   WHERE d.kind = 'self_harm_acknowledgement' AND d.due_at >= :start AND d.due_at < :end
     AND d.closed_at IS NOT NULL AND d.closed_at <= :as_of
), ranked AS (
  SELECT grp, minutes, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY minutes) AS position,
         COUNT(*) OVER (PARTITION BY grp) AS total FROM acked
)
SELECT grp, AVG(minutes) AS median, MAX(total) AS total FROM ranked
 WHERE position IN ((total + 1) / 2, (total + 2) / 2) GROUP BY grp"""
        rows = self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))
        return {row.grp: Median(round(float(row.median), 1), int(row.total)) for row in rows}

    def return_interviews(self, p: Period, by: str | None) -> list[tuple[str, int, int, int]]:
        """(group, completed by the deadline, completed/declined/not possible, episodes counted)."""
        g = grouping(by, "e.child_id")
        offered = ", ".join(f"'{outcome}'" for outcome in RHI_OFFERED_OUTCOMES)
        sql = f"""{g.with_sql}
SELECT {g.group_sql} AS grp,
       SUM(CASE WHEN e.return_interview_outcome = 'COMPLETED' AND d.closed_at IS NOT NULL
                 AND d.closed_at <= :as_of AND e.return_interview_recorded_at <= d.due_at
                THEN 1 ELSE 0 END) AS on_time,
       SUM(CASE WHEN e.return_interview_outcome IN ({offered}) AND d.closed_at IS NOT NULL
                 AND d.closed_at <= :as_of THEN 1 ELSE 0 END) AS offered,
       SUM(CASE WHEN (d.closed_at IS NOT NULL AND d.closed_at <= :as_of) OR d.due_at <= :as_of
                THEN 1 ELSE 0 END) AS den
  FROM missingepisode e
  JOIN deadline d ON d.kind = 'return_interview' AND d.subject_id = e.episode_id
  {g.join_sql}
 WHERE e.found_at >= :start AND e.found_at < :end AND e.found_at <= :as_of
 GROUP BY grp"""
        rows = self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))
        return [(row.grp, int(row.on_time or 0), int(row.offered or 0), int(row.den or 0)) for row in rows]

    def repeat_missing_children(self, p: Period, by: str | None) -> dict[str, int]:
        g = grouping(by, "r.child_id")
        later = self.sql["plus_window"].format(x="e1.reported_at")
        cte = f"{g.with_sql}, " if g.with_sql else "WITH "
        sql = f"""{cte}repeat AS (
  SELECT DISTINCT e1.child_id AS child_id FROM missingepisode e1
    JOIN missingepisode e2 ON e2.child_id = e1.child_id AND e2.reported_at >= e1.reported_at
     AND e2.reported_at <= {later} AND e2.reported_at < :end AND e2.reported_at <= :as_of
   WHERE e1.child_id IS NOT NULL AND e1.reported_at >= :start AND e1.reported_at < :end
     AND e1.reported_at <= :as_of
   GROUP BY e1.child_id, e1.episode_id HAVING COUNT(*) >= {REPEAT_EPISODES}
)
SELECT {g.group_sql} AS grp, COUNT(*) AS children FROM repeat r {g.join_sql} GROUP BY grp"""
        rows = self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))
        return {row.grp: int(row.children) for row in rows}

    def open_escalations(self, p: Period, by: str | None) -> dict[str, dict[str, int]]:
        """Deadlines open at ``as_of`` whose ladder had fired at least one step by then, by level (3 = 3+).

        The level at an instant is the number of `escalated` audit entries the sweep wrote for the deadline
        up to it (the deadline row only holds its level now)."""
        g = grouping(by, "o.child_id", "o.school_urn")
        internal = ", ".join(f"'{kind}'" for kind in INTERNAL_KINDS)
        cte = f"{g.with_sql}, " if g.with_sql else "WITH "
        sql = f"""{cte}open_at AS (
  SELECT d.child_id AS child_id, d.school_urn AS school_urn,
         (SELECT COUNT(*) FROM auditentry a WHERE a.subject_id = d.id AND a.action = 'escalated'
             AND a.at <= :as_of) AS level
    FROM deadline d
   WHERE d.kind NOT IN ({internal}) AND d.escalation_level > 0 AND d.created_at <= :as_of
     AND (d.closed_at IS NULL OR d.closed_at > :as_of)
)
SELECT {g.group_sql} AS grp,
       SUM(CASE WHEN o.level = 1 THEN 1 ELSE 0 END) AS level_1,
       SUM(CASE WHEN o.level = 2 THEN 1 ELSE 0 END) AS level_2,
       SUM(CASE WHEN o.level >= 3 THEN 1 ELSE 0 END) AS level_3
  FROM open_at o {g.join_sql} WHERE o.level > 0 GROUP BY grp"""
        rows = self._rows(sql, {"as_of": p.as_of}, ("as_of",))
        return {row.grp: {"1": int(row.level_1 or 0), "2": int(row.level_2 or 0), "3": int(row.level_3 or 0)}
                for row in rows}

    def delivery_failures(self, p: Period, by: str | None) -> dict[str, int]:
        """Notifications created in the period that the relay tried to deliver and no channel delivered: no
        delivery recorded, and past ``pending`` (``failed``, or read in the app after failing)."""
        g = grouping(by, "ev.child_id", "n.school_urn")
        sql = f"""{g.with_sql}
SELECT {g.group_sql} AS grp, COUNT(*) AS failures
  FROM notification n LEFT JOIN event ev ON ev.event_id = n.event_id {g.join_sql}
 WHERE n.created_at >= :start AND n.created_at < :end AND n.created_at <= :as_of
   AND n.delivered_at IS NULL AND n.status NOT IN ('pending', 'withheld')
 GROUP BY grp"""
        rows = self._rows(sql, {"start": p.start, "end": p.end, "as_of": p.as_of}, ("start", "end", "as_of"))
        return {row.grp: int(row.failures) for row in rows}

    # ---- one period, grouped ------------------------------------------------------------------------------

    def rows(self, p: Period, by: str | None) -> dict[str, ScoreRow]:
        """Every measure for one period, per group of ``by`` (None: one row, the period's own label)."""
        found: dict[str, ScoreRow] = {}

        def row(group: str) -> ScoreRow:
            key = group if by else p.label
            return found.setdefault(key, ScoreRow(key))

        for measure, group, numerator, denominator in self.deadline_ratios(p, by):
            row(group).ratios[measure] = Ratio(numerator, denominator)
        for group, median in self.median_minutes_to_ack(p, by).items():
            row(group).median_minutes_to_ack = median
        for group, on_time, offered, denominator in self.return_interviews(p, by):
            row(group).ratios["rhi_within_72h"] = Ratio(on_time, denominator)
            row(group).ratios["rhi_offered"] = Ratio(offered, denominator)
        for group, children in self.repeat_missing_children(p, by).items():
            row(group).repeat_missing_children = children
        for group, levels in self.open_escalations(p, by).items():
            row(group).open_escalations = levels
        for group, failures in self.delivery_failures(p, by).items():
            row(group).delivery_failures = failures
        if not by:
            row(p.label)  # the period's row exists even when nothing happened in it
        return found


def scorecard(session: Session, postgres: bool, first_day: date, last_day: date, by: str, now: datetime,
              tz: ZoneInfo) -> list[dict[str, Any]]:
    """The scorecard for [first_day, last_day] (London days): one row per group of ``by`` (school, team or
    financial quarter), sorted, then the whole partnership's row with group ``ALL``."""
    if by not in GROUPINGS:
        raise ValueError("by must be school, team or quarter")
    queries = ScorecardQueries(session, postgres)
    whole = period(first_day, last_day, now, tz)
    if by == "quarter":
        groups = [queries.rows(period(q_first, q_last, now, tz, label), None)[label]
                  for label, q_first, q_last in quarters(first_day, last_day)]
    else:
        grouped = queries.rows(whole, by)
        groups = [grouped[key] for key in sorted(grouped)]
    total = queries.rows(whole, None)[ALL]
    return [row.as_dict() for row in (*groups, total)]

