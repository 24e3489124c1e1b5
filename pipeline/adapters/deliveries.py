"""Queries on delivery rows (one per notification and channel) for the relay, the callbacks and the API.

On PostgreSQL the relay claims due rows with ``FOR UPDATE SKIP LOCKED``, so several workers never claim one
row together; on SQLite the store's single writer does the same.

The relay's hot path (claim a batch, record a batch of accepted sends) reads plain rows, not ORM objects, and
writes each batch with one multi-row statement; the rarer cases (failures, fallbacks, a lease run out) use the
ORM rows below.

``DeliveryQueries`` is the delivery part of the store port (pipeline/ports/deliveries.py): a mixin of
``Repository``, in its session. The functions below it are the questions others ask of a session (the API's
summary, a person's team) and ``mark_relayed``, which the mixin tells its dialect.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, any_, bindparam, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from pipeline.adapters import notifications
from pipeline.adapters import tables as t
from pipeline.adapters.driver_statements import DriverStatement
from pipeline.domain.delivery import ACTIVE, NOT_YET_DELIVERED, DeliveryState
from pipeline.ports.deliveries import Accepted, Resolved, Sending

DELIVERY = t.Delivery.__table__  # type: ignore[attr-defined]
NOTIFICATION = t.Notification.__table__  # type: ignore[attr-defined]
OUTBOX = t.Outbox.__table__  # type: ignore[attr-defined]
_INSTANT = DELIVERY.c.next_attempt_at.type


# The relay's statements are built once (per limit and dialect), with expanding parameters for id lists: building
# a statement, and coercing each of a hundred ids into it, cost more than running it.
@functools.cache
def _claim_due(limit: int, postgres: bool) -> Any:
    # New rows are written due at once, so one range on the (state, next_attempt_at) index finds them all.
    query = (sa_select(DELIVERY.c.id, DELIVERY.c.notification_id, DELIVERY.c.channel, DELIVERY.c.state,
                       DELIVERY.c.position, DELIVERY.c.attempts, DELIVERY.c.last_error)
             .where(DELIVERY.c.state.in_(tuple(sorted(ACTIVE))),
                    DELIVERY.c.next_attempt_at <= bindparam("now", type_=_INSTANT))
             .order_by(DELIVERY.c.next_attempt_at).limit(limit))
    return query.with_for_update(skip_locked=True) if postgres else query


@functools.cache
def _outbox_due(limit: int, postgres: bool) -> DriverStatement:
    # With each row, the fields of its notification a console line needs (a notification's topic record carries
    # its id): one statement a batch.
    query = (sa_select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.key, OUTBOX.c.body_json, OUTBOX.c.notification_id,
                       NOTIFICATION.c.id.label("found_notification"), NOTIFICATION.c.urgency,
                       NOTIFICATION.c.school_urn, NOTIFICATION.c.pathway)
             .select_from(OUTBOX.outerjoin(NOTIFICATION, NOTIFICATION.c.id == OUTBOX.c.notification_id))
             .where(OUTBOX.c.relayed_at.is_(None)).order_by(OUTBOX.c.id).limit(limit))
    # Only the outbox rows are locked (PostgreSQL locks no row on the nullable side of an outer join).
    return DriverStatement(query.with_for_update(of=OUTBOX, skip_locked=True) if postgres else query)


# By primary key, one row at a time in one executemany: on SQLite the driver's loop runs it, with no expanding
# IN list for SQLAlchemy to render per batch. On PostgreSQL one statement for the batch, its ids as one array
# parameter (psycopg's executemany sends one statement per row, each costing the client 10 to 20 us).
_MARK_RELAYED = DriverStatement(update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id"))
                                .values(relayed_at=bindparam("now", type_=_INSTANT)))
_MARK_RELAYED_ALL = DriverStatement(
    update(OUTBOX).where(OUTBOX.c.id == any_(bindparam("row_ids", type_=ARRAY(Integer))))
    .values(relayed_at=bindparam("now", type_=_INSTANT)))


def mark_relayed(session: Session, ids: list[int], now: datetime, *, postgres: bool) -> None:
    if not ids:
        return
    if postgres:
        _MARK_RELAYED_ALL.run(session.connection(), {"row_ids": ids, "now": now})
    else:
        _MARK_RELAYED.run_many(session.connection(), [{"row_id": row_id, "now": now} for row_id in ids])


_CHANNELS_OF = sa_select(DELIVERY.c.notification_id, DELIVERY.c.channel, DELIVERY.c.state) \
    .where(DELIVERY.c.notification_id.in_(bindparam("ids", expanding=True)))
_NOTIFICATION_FIELDS = sa_select(*(NOTIFICATION.c[name] for name in (
    "id", "status", "recipient_role", "urgency", "school_urn", "pathway", "contact_email", "contact_phone",
    "created_at", "delivered_at"))).where(NOTIFICATION.c.id.in_(bindparam("ids", expanding=True)))


_MARK_SENDING = DriverStatement(update(DELIVERY).where(DELIVERY.c.id == bindparam("row_id"))
                 .values(state=DeliveryState.SENDING, position=bindparam("new_position"),
                         attempts=bindparam("new_attempts"), provider=bindparam("new_provider"),
                         last_attempt_at=bindparam("now", type_=_INSTANT),
                         next_attempt_at=bindparam("lease_until", type_=_INSTANT)))
_MARK_RESOLVED = DriverStatement(update(DELIVERY).where(DELIVERY.c.id == bindparam("row_id"))
                  .values(state=bindparam("new_state"), position=bindparam("new_position"),
                          next_attempt_at=None, last_error=bindparam("new_error")))
_MARK_SENT = DriverStatement(update(DELIVERY)
              .where(and_(DELIVERY.c.id == bindparam("row_id"), DELIVERY.c.state == DeliveryState.SENDING,
                          DELIVERY.c.attempts == bindparam("claimed_attempts")))
              .values(state=DeliveryState.SENT, last_outcome="accepted", last_error=None, next_attempt_at=None,
                      provider_ref=bindparam("reference")))
_NOT_YET_DELIVERED = or_(*(NOTIFICATION.c.status == str(status) for status in sorted(NOT_YET_DELIVERED)))
# Set to SQL expressions (case, coalesce), so through Core: a DriverStatement takes no such update.
_MARK_DELIVERED = (update(NOTIFICATION).where(NOTIFICATION.c.id == bindparam("notification"))
                   .values(status=case((_NOT_YET_DELIVERED, "delivered"), else_=NOTIFICATION.c.status),
                           delivered_at=func.coalesce(NOTIFICATION.c.delivered_at,
                                                      bindparam("now", type_=_INSTANT))))
_CLAIMED_ROWS = sa_select(DELIVERY.c.id, DELIVERY.c.notification_id, DELIVERY.c.channel, DELIVERY.c.state,
                          DELIVERY.c.attempts, DELIVERY.c.provider, DELIVERY.c.ambiguous_resends) \
    .where(DELIVERY.c.id.in_(bindparam("ids", expanding=True)))
_WAITING_RETRIES = DriverStatement(sa_select(func.count()).select_from(DELIVERY).where(
    DELIVERY.c.state == DeliveryState.PENDING, DELIVERY.c.attempts > 0))


def for_notification(session: Session, notification_id: str) -> list[t.Delivery]:
    return list(session.exec(select(t.Delivery).where(t.Delivery.notification_id == notification_id)
                             .order_by(col(t.Delivery.position), col(t.Delivery.channel))).all())


def team_of_person(session: Session, role: str, email: str) -> str | None:
    """The allocated team of a worker, team manager or IRO, from the open involvements naming them."""
    column = {"worker": t.Involvement.worker_email, "team_manager": t.Involvement.manager_email,
              "iro": t.Involvement.iro_email}.get(role)
    if column is None:
        return None
    return session.exec(select(t.Involvement.team).where(col(column) == email, col(t.Involvement.ended_at).is_(None),
                                                         col(t.Involvement.team).is_not(None))
                        .order_by(col(t.Involvement.team)).limit(1)).first()


def summary(session: Session, notification_id: str) -> list[dict[str, object]]:
    """What the notification's detail shows: each channel's state, attempts and last attempt (no address)."""
    return [{"channel": row.channel, "status": row.state, "attempts": row.attempts,
             "last_attempt_at": row.last_attempt_at.isoformat() if row.last_attempt_at else None}
            for row in for_notification(session, notification_id)]


class DeliveryQueries:
    """The delivery part of the store port (pipeline/ports/deliveries.py) in SQL: a mixin of ``Repository``, in its
    session, with its dialect (``postgres``) choosing the locking statements.

    The plain rows are read, and the batches written, with Core statements on the session's connection, after a
    flush: so they see what this unit of work changed on live records (ORM rows) before, as on the fake, and a
    batch's change lands after those. A flush with nothing to write sends nothing."""

    if TYPE_CHECKING:
        postgres: bool

        @property
        def session(self) -> Session: ...

    def _connection(self) -> Connection:
        """The session's connection, this unit of work's changes to live records written first."""
        session = self.session
        session.flush()
        return session.connection()

    # ---- the outbox -----------------------------------------------------------------------------------
    def outbox_due(self, limit: int) -> list[Any]:
        """Plain rows, locked on PostgreSQL (skipping locked ones), each with its notification's
        ``found_notification`` (None when there is none), ``urgency``, ``school_urn`` and ``pathway``."""
        return _outbox_due(limit, self.postgres).rows(self._connection())

    def mark_relayed(self, ids: Sequence[int], now: datetime) -> None:
        mark_relayed(self.session, list(ids), now, postgres=self.postgres)

    # ---- the hot path -----------------------------------------------------------------------------------
    def claim_due_deliveries(self, now: datetime, limit: int) -> list[Any]:
        """Plain rows, locked until the transaction ends."""
        return list(self._connection().execute(_claim_due(limit, self.postgres), {"now": now}).all())

    def notification_fields(self, ids: Iterable[str]) -> dict[str, Any]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        return {row.id: row for row in self._connection().execute(_NOTIFICATION_FIELDS, {"ids": wanted})}

    def channel_states(self, notification_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        ids = set(notification_ids)
        found: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for notification_id, channel, state in self._connection().execute(_CHANNELS_OF, {"ids": list(ids)}):
                found[notification_id][channel] = state
        return found

    def mark_sending(self, rows: Sequence[Sending], now: datetime) -> None:
        if rows:
            _MARK_SENDING.run_many(self._connection(), [
                {"row_id": row.row_id, "new_position": row.position, "new_attempts": row.attempts,
                 "new_provider": row.provider, "now": now, "lease_until": row.lease_until} for row in rows])

    def mark_resolved(self, rows: Sequence[Resolved]) -> None:
        if rows:
            _MARK_RESOLVED.run_many(self._connection(), [
                {"row_id": row.row_id, "new_state": row.state, "new_position": row.position, "new_error": row.error}
                for row in rows])

    def claimed_deliveries(self, ids: Iterable[str]) -> dict[str, Any]:
        wanted = list(ids)
        if not wanted:
            return {}
        return {row.id: row for row in self._connection().execute(_CLAIMED_ROWS, {"ids": wanted})}

    def mark_sent(self, sends: Sequence[Accepted], now: datetime) -> None:
        """Two statements: the rows still ours, then their notifications."""
        if not sends:
            return
        connection = self._connection()
        _MARK_SENT.run_many(connection, [{"row_id": send.row_id, "claimed_attempts": send.claimed_attempts,
                                          "reference": send.reference} for send in sends])
        connection.execute(_MARK_DELIVERED, [{"notification": notification_id, "now": now}
                                             for notification_id in sorted({send.notification_id for send in sends})])

    def retries_waiting(self) -> int:
        return int(_WAITING_RETRIES.scalar(self._connection()))

    # ---- live records --------------------------------------------------------------------------------------
    def deliveries_by_id(self, ids: Iterable[str]) -> list[t.Delivery]:
        wanted = list(ids)
        if not wanted:
            return []
        return list(self.session.exec(select(t.Delivery).where(col(t.Delivery.id).in_(wanted))).all())

    def notifications_by_id(self, ids: Iterable[str]) -> dict[str, t.Notification]:
        return notifications.notifications_by_id(self.session, ids)

    def deliveries_of_notifications(self, notification_ids: Iterable[str]) -> dict[str, list[t.Delivery]]:
        ids = set(notification_ids)
        found: dict[str, list[t.Delivery]] = {i: [] for i in ids}
        if ids:
            for row in self.session.exec(select(t.Delivery).where(col(t.Delivery.notification_id).in_(ids))).all():
                found[row.notification_id].append(row)
        return found

    def deliveries_of_notification(self, notification_id: str) -> list[t.Delivery]:
        return for_notification(self.session, notification_id)

    def delivery_by_provider_reference(self, provider: str, reference: str) -> t.Delivery | None:
        query = select(t.Delivery).where(t.Delivery.provider == provider, t.Delivery.provider_ref == reference)
        if self.postgres:
            query = query.with_for_update()
        return self.session.exec(query).first()
