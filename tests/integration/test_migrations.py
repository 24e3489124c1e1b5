"""Both stores are created only by Alembic migrations, and head matches the models exactly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel

from pipeline.adapters import tables  # noqa: F401  (registers the models)
from pipeline.adapters.store import Store


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrating_an_empty_database_to_head_matches_the_models(backend: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    store = Store(url)
    assert inspect(store.engine).get_table_names() == []
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []
    assert {"event", "notification", "deadline", "auditentry", "missingepisode"} <= set(
        inspect(store.engine).get_table_names())
    store.dispose()


def test_no_code_creates_tables_outside_migrations() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [path for folder in ("pipeline", "consumers", "producers") for path in (root / folder).rglob("*.py")]
    offenders = [str(path) for path in sources if "create_all(" in path.read_text()]
    assert offenders == []


def _history(backend: str, rows: int = 5_000) -> str:
    """The FROM clause of an ``INSERT ... SELECT`` of history: ``n``, 1 to ``rows``, and ``created_at``, one instant."""
    numbers = (f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) SELECT n FROM g"
               if backend == "sqlite" else f"SELECT generate_series(1, {rows}) AS n")
    now = "'2026-12-03 12:00:00.000000'" if backend == "sqlite" else "now()"
    return f" FROM ({numbers}) AS history, (SELECT {now} AS created_at) AS now"


def _migrated_with_history(backend: str, tmp_path: Path, request: pytest.FixtureRequest, insert: str,
                           analyze: bool = True) -> Store:
    """A store migrated to head, then 5,000 rows of history: ``insert`` (an ``INSERT ... SELECT`` of columns made
    from ``n``, 1 to 5,000, and ``created_at``, one instant) completed with its FROM; then ANALYZE, unless
    ``analyze`` is false on SQLite (which, as shipped, never gathers statistics)."""
    from sqlalchemy import text

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.db"
    store = Store(url)
    store.migrate()
    with store.engine.begin() as connection:
        connection.execute(text(insert + _history(backend)))
        if analyze or backend == "postgresql":
            connection.execute(text("ANALYZE"))
    return store


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_relays_read_walks_only_the_rows_still_to_relay(backend: str, tmp_path: Path,
                                                            request: pytest.FixtureRequest) -> None:
    """On a long outbox history the relay's read must not pass over the rows already relayed. Before
    ``ix_outbox_waiting`` (migration 0010) SQLite scanned the table here, and PostgreSQL, on a larger history
    (40,000 rows, half relayed), walked the primary key skipping every relayed row; with these 5,000 rows it chose
    the old index on relayed_at. So this guards the choice of the index, on both backends, rather than
    reproducing each old plan."""

    from pipeline.adapters.deliveries import _outbox_due

    store = _migrated_with_history(backend, tmp_path, request, (
        "INSERT INTO outbox (topic, key, body_json, notification_id, created_at, relayed_at) "
        "SELECT 'pathway-notifications', 'k', '{}', NULL, created_at, CASE WHEN n <= 4900 THEN created_at END"))
    statement = _outbox_due(100, store.is_postgres).statement
    sql = str(statement.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        explain = "EXPLAIN (ANALYZE, FORMAT TEXT) " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
        plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + sql))
        waiting = connection.exec_driver_sql(sql).all()
    store.dispose()
    assert "ix_outbox_waiting" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan
    assert len(waiting) == 100 and all(row.id > 4900 for row in waiting)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_episodes_deadlines_are_read_by_an_index_not_by_reading_every_deadline(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The missing pathway reads an episode's deadlines (``deadlines_of_subjects``) on every event about an episode
    already stored. Before ``ix_deadline_subject`` (migration 0011) both backends read every deadline ever stored
    for it: no index began with the subject. The statement checked is the one the repository sends."""
    store = _migrated_with_history(backend, tmp_path, request, (
        "INSERT INTO deadline (id, kind, subject_id, due_at, state, escalation_level, steps_json, created_at) "
        "SELECT 'd-' || n, 'still_missing', 'EP-' || n, created_at, 'open', 0, '[]', created_at"))
    found: list[Any] = []
    plans = _plans_of(store, backend, "deadline",
                      lambda port: found.extend(port.deadlines_of_subjects(["EP-17", "trigger:EP-17"])))
    store.dispose()
    assert [row.id for row in found] == ["d-17"]
    assert len(plans) == 1, plans
    plan = plans[0]
    assert "ix_deadline_subject" in plan, plan
    assert "SCAN deadline" not in plan and "Seq Scan" not in plan, plan


def _plans_of(store: Store, backend: str, table: str, act: Callable[[Any], object],
              opened: Callable[[], Any] | None = None, statements: list[str] | None = None) -> list[str]:
    """The plan of each statement reading ``table`` that ``act`` sends, given what ``opened()`` opens (by default a
    unit of work, as a handler runs; a plain session, as the web app's reads run); the statements themselves are
    added to ``statements`` if given."""
    from sqlalchemy import event

    sent: list[tuple[str, object]] = []

    def keep(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if f"FROM {table}" in " ".join(statement.split()):
            sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", keep)
    with (opened or store.unit_of_work)() as opened_one:
        act(opened_one)
    event.remove(store.engine, "before_cursor_execute", keep)
    if statements is not None:
        statements.extend(statement for statement, _ in sent)
    explain = "EXPLAIN (ANALYZE, FORMAT TEXT) " if backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with store.engine.connect() as connection:
        return ["\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + statement, parameters))
                for statement, parameters in sent]


_OPEN_DEADLINES_OF_CHILDREN = (
    "INSERT INTO deadline (id, kind, subject_id, event_id, child_id, due_at, state, escalation_level, steps_json, "
    "created_at) SELECT 'd-' || n, CASE n % 3 WHEN 0 THEN 'still_missing' WHEN 1 THEN 'trigger_meeting' "
    "ELSE 'consent_decision' END, 'EP-' || n, 'E-' || n, 'C-' || n, created_at, 'open', 0, '[]', created_at")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_batchs_pending_trigger_meetings_are_read_by_the_partial_index(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Every batch of missing reports reads its children's pending trigger meetings in one statement. SQLite, with no
    statistics (as shipped), took ``state = 'open'`` on ix_deadline_sweep for about ten rows, so for a batch of more
    than ten children it read every open deadline: a cost that grew with the deployment's history. The read must go
    through the partial unique index on the child."""
    store = _migrated_with_history(backend, tmp_path, request, _OPEN_DEADLINES_OF_CHILDREN, analyze=False)
    from sqlalchemy import text

    children = [f"C-{n}" for n in range(100, 164)]  # 64 children, those with n % 3 == 1 with a pending meeting
    with store.engine.begin() as connection:
        connection.execute(text("INSERT INTO child (child_id, person_key, created_at) VALUES (:child, :child, "
                                "'2026-12-03 12:00:00')"), [{"child": child} for child in children])
    found: list[object] = []

    def read(port: Any) -> None:
        port.lock_children(children)  # as a batch does first (on PostgreSQL, only a locked child's are read ahead)
        port.read_children_ahead(children)
        found.extend(port.open_trigger_meeting(child) for child in children)

    sent: list[str] = []
    plans = _plans_of(store, backend, "deadline", read, statements=sent)
    store.dispose()
    assert [row.id if row is not None else None for row in found] == [  # type: ignore[attr-defined]
        f"d-{n}" if n % 3 == 1 else None for n in range(100, 164)]
    assert len(plans) == 1, plans
    assert "uq_deadline_open_trigger_meeting" in plans[0], plans[0]
    # The predicate with its values written in: a generic PostgreSQL plan (psycopg prepares a statement sent five
    # times) cannot use a partial index for a predicate with bound parameters.
    assert "kind = 'trigger_meeting' AND state = 'open'" in sent[0], sent[0]
    assert "ix_deadline_sweep" not in plans[0] and "Seq Scan" not in plans[0], plans[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_events_open_deadline_is_read_by_the_event_not_by_every_open_deadline(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A consent decision or a review outcome looks up the event's open deadline of a kind. With the kind and state
    in the query, SQLite chose ix_deadline_sweep (state) and read every open deadline."""
    store = _migrated_with_history(backend, tmp_path, request, _OPEN_DEADLINES_OF_CHILDREN, analyze=False)
    found: list[object] = []
    plans = _plans_of(store, backend, "deadline", lambda port: found.extend(
        [port.open_deadline_of_event("E-17", kind) for kind in ("consent_decision", "still_missing")]))
    store.dispose()
    assert [row.id if row is not None else None for row in found] == ["d-17", None]  # type: ignore[attr-defined]
    assert plans and all("ix_deadline_event_id" in plan for plan in plans), plans
    assert not any("ix_deadline_sweep" in plan or "Seq Scan" in plan for plan in plans), plans


# 5,000 notifications: a fifth of them fired on a deadline (D-n), fifty schools' DSL alerts and forty teams' alerts.
_NOTIFICATIONS = (
    "INSERT INTO notification (id, event_id, pathway, kind, plan_key, recipient_role, recipient_ref, school_urn, "
    "urgency, reason, status, content_json, deadline_id, created_at) "
    "SELECT 'N-' || n, 'E-' || n, 'self_harm', CASE WHEN n % 5 = 0 THEN 'reminder' ELSE 'alert' END, 'k', "
    "CASE WHEN n % 2 = 0 THEN 'dsl' ELSE 'TEAM-' || (n % 40) END, CASE WHEN n % 2 = 0 THEN 'dsl' "
    "ELSE 'TEAM-' || (n % 40) END, 'URN-' || (n % 50), 'ROUTINE', 'r', "
    "CASE WHEN n % 97 = 0 THEN 'failed' ELSE 'pending' END, '{}', "
    "CASE WHEN n % 5 = 0 THEN 'D-' || n END, created_at")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_what_was_fired_on_deadlines_is_read_by_the_deadline_not_by_every_notification(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The inbox, the overdue board and a case page read the reminders and escalations fired on deadlines, and an
    acknowledgement a school's copies of an alert. Before ``ix_notification_deadline`` (migration 0012) nothing
    indexed ``deadline_id``: SQLite walked every notification ever sent, 70 to 90 ms at 145,000."""
    from pipeline.adapters import tables as t
    from pipeline.adapters.inbox import fired_on, school_copies
    from pipeline.adapters.notifications import told_about_deadline
    from pipeline.adapters.overdue_board import _told

    store = _migrated_with_history(backend, tmp_path, request, _NOTIFICATIONS, analyze=False)
    found: dict[str, Any] = {}

    def read(session: Any) -> None:
        found["fired"] = [row.id for row in fired_on(session, ["D-10", "D-20", "D-25"])]
        found["told"] = [row.id for row in told_about_deadline(session, t.Deadline(id="D-10", subject_id="N-3"))]
        found["board"] = _told(session, ["D-10", "D-15"])
        alert = session.get(t.Notification, "N-10")
        found["copies"] = [row.id for row in school_copies(session, alert)]

    plans = _plans_of(store, backend, "notification", read, lambda: Session(store.engine))
    store.dispose()
    assert found["fired"] == ["N-10", "N-20", "N-25"]
    assert sorted(found["told"]) == ["N-10", "N-3"]
    assert found["board"] == {"D-10": ["dsl"], "D-15": ["TEAM-15"]}
    assert found["copies"] == ["N-10"]
    fired = [plan for plan in plans if "ix_notification_deadline" in plan]
    assert len(fired) == 4, plans  # one of the five reads is the alert's own, by its primary key
    assert not any("SCAN notification" in plan or "Seq Scan" in plan for plan in plans), plans


def test_a_page_of_notifications_or_deadlines_is_read_in_its_indexs_order(tmp_path: Path,
                                                                          request: pytest.FixtureRequest) -> None:
    """A DSL's or team's page of notifications, a manager's of one status, and the API's open deadlines, newest
    first. Before migrations 0012 and 0013 SQLite read every row of the scope ever stored, then sorted them (55 to
    200 ms a page at 145,000 notifications): no index ended with the page's order."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from pipeline.adapters.accounts import UserRow
    from pipeline.adapters.notifications import notifications_page
    from pipeline.adapters.record_reads import deadlines_page

    store = _migrated_with_history("sqlite", tmp_path, request, _NOTIFICATIONS, analyze=False)
    with store.engine.begin() as connection:
        connection.execute(text(_OPEN_DEADLINES_OF_CHILDREN + _history("sqlite", 500)))
    made = datetime(2026, 12, 3, tzinfo=UTC)
    dsl = UserRow(1, "dsl@school.example", "dsl", "URN-4", None, None, made, None)
    team = UserRow(2, "team@council.example", "team", None, "TEAM-7", None, made, None)
    manager = UserRow(3, "manager@council.example", "manager", None, None, None, made, None)
    found: dict[str, Any] = {}

    def read(session: Any) -> None:
        found["dsl"] = notifications_page(session, dsl, None, limit=3, before=None)
        found["team"] = notifications_page(session, team, None, limit=3, before="N-4967")
        found["failed"] = notifications_page(session, manager, "failed", limit=3, before=None)
        found["deadlines"] = deadlines_page(session, "open", made, limit=3, before=None)

    plans = _plans_of(store, "sqlite", "notification", read, lambda: Session(store.engine)) + \
        _plans_of(store, "sqlite", "deadline", read, lambda: Session(store.engine))
    store.dispose()
    # One instant for every row: newest first is then by id, descending (as text).
    dsls = sorted((f"N-{n}" for n in range(1, 5001) if n % 2 == 0 and n % 50 == 4), reverse=True)
    teams = sorted((f"N-{n}" for n in range(1, 5001) if n % 2 == 1 and n % 40 == 7), reverse=True)
    assert [row.id for row in found["dsl"].rows] == dsls[:3]
    assert [row.id for row in found["team"].rows] == [i for i in teams if i < "N-4967"][:3]
    assert [row.id for row in found["failed"].rows] == sorted((f"N-{n}" for n in range(97, 5001, 97)),
                                                              reverse=True)[:3]
    assert [row.id for row in found["deadlines"].rows] == sorted((f"d-{n}" for n in range(1, 501)), reverse=True)[:3]
    assert any("ix_notification_school_urn" in plan for plan in plans), plans
    assert any("ix_notification_scope" in plan for plan in plans), plans
    assert any("ix_notification_status" in plan for plan in plans), plans
    assert any("ix_deadline_state_created" in plan for plan in plans), plans
    assert not any("TEMP B-TREE" in plan for plan in plans), plans


def test_an_inbox_reads_its_cases_on_open_deadlines_from_the_deadlines(tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    """Every inbox load reads the user's notifications on deadlines still open, however old. With the scope in the
    query, SQLite without statistics (as shipped) read every notification the school or team was ever sent through
    the scope's index and looked each one's deadline up; the read must start from the open deadlines."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from pipeline.adapters.accounts import UserRow
    from pipeline.adapters.inbox import on_open_deadlines

    store = _migrated_with_history("sqlite", tmp_path, request, _NOTIFICATIONS, analyze=False)
    with store.engine.begin() as connection:  # each notification's deadline D-n: open when n is a multiple of 50
        connection.execute(text(
            "INSERT INTO deadline (id, kind, subject_id, due_at, state, escalation_level, steps_json, created_at) "
            "SELECT 'D-' || n, 'self_harm_acknowledgement', 'N-' || n, created_at, "
            "CASE WHEN n % 50 = 0 THEN 'open' ELSE 'closed' END, 0, '[]', created_at"
            + _history("sqlite") + " WHERE n % 5 = 0"))
    made = datetime(2026, 12, 3, tzinfo=UTC)
    dsl = UserRow(1, "dsl@school.example", "dsl", "URN-0", None, None, made, None)
    team = UserRow(2, "team@council.example", "team", None, "TEAM-15", None, made, None)
    found: dict[str, Any] = {}

    def read(session: Any) -> None:
        found["dsl"] = {row.id for row in on_open_deadlines(session, dsl)}
        found["team"] = {row.id for row in on_open_deadlines(session, team)}

    plans = _plans_of(store, "sqlite", "deadline", read, lambda: Session(store.engine))
    store.dispose()
    assert found["dsl"] == {f"N-{n}" for n in range(50, 5001, 50)}
    assert found["team"] == set()
    assert len(plans) == 2, plans
    for plan in plans:
        assert plan.splitlines()[0].startswith("SEARCH deadline"), plan
        assert "ix_notification_deadline" in plan, plan
        assert "ix_notification_school_urn" not in plan and "ix_notification_scope" not in plan, plan



@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_return_interview_measure_reads_the_periods_episodes_not_every_interview_deadline(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The scorecard's return home interview measures (the dashboard's headline, every chart point) join episodes
    found in the period to their interview deadlines. Joined from the deadlines, SQLite without statistics took every
    return-interview deadline ever stored (``kind = 'return_interview'``): a cost that grew with history, not with
    the period. The episodes found in the period must come first. (The cases behind a figure keep the deadlines
    first: read in due order with a limit, they stop early on a period as long as the history.)"""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy import text

    from pipeline.adapters.scorecard import ScorecardQueries, period

    # 5,000 episodes found a day apart (2013 to 2026), each with its return interview due the next day, completed
    # and closed on time.
    def day(offset: int) -> str:
        return (f"datetime('2013-01-01 12:00:00', '+' || (n + {offset}) || ' days') || '.000000'" if backend == "sqlite"
                else f"timestamp '2013-01-01 12:00:00' + (n + {offset}) * interval '1 day'")

    store = _migrated_with_history(backend, tmp_path, request, (
        "INSERT INTO deadline (id, kind, subject_id, due_at, state, escalation_level, steps_json, created_at, "
        f"closed_at) SELECT 'd-' || n, 'return_interview', 'EP-' || n, {day(1)}, 'closed', 0, '[]', {day(0)}, "
        f"{day(0)}"), analyze=False)
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO missingepisode (episode_id, child_id, found_at, return_interview_outcome, "
            "return_interview_recorded_at, exploitation_flags, updated_at) SELECT 'EP-' || n, 'C-' || n, "
            f"{day(0)}, 'COMPLETED', {day(0)}, '[]', {day(0)}" + _history(backend)))
        if backend == "postgresql":
            connection.execute(text("ANALYZE"))
    week = period(date(2026, 6, 1), date(2026, 6, 7), datetime(2026, 12, 3, tzinfo=UTC), ZoneInfo("Europe/London"))
    found: dict[str, Any] = {}

    def read(session: Any) -> None:
        found["measure"] = ScorecardQueries(session, store.is_postgres).return_interviews(week, None)

    plans = _plans_of(store, backend, "missingepisode", read, lambda: Session(store.engine))
    store.dispose()
    assert [row[1:] for row in found["measure"]] == [(7, 7, 7)]
    assert len(plans) == 1, plans
    assert "ix_missingepisode_found_at" in plans[0], plans[0]
    assert "Seq Scan" not in plans[0] and "SCAN d" not in plans[0] and "(kind=?)" not in plans[0], plans[0]
