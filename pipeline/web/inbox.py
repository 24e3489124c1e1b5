"""The inbox of cases for a DSL, a council team (the front door too) and a worker, and each case's page.

An inbox shows cases, not copies: a school's alert to the DSL and the deputy, and the reminders fired on
it, are one item, acknowledged for the school by whichever of them acknowledges it. Reminders and
escalations appear on the item ("Reminder sent at 12pm"), overdue items come first (the longest overdue
first), then the newest, fifty to a page; "waiting for action" narrows the list to the cases not yet
acknowledged whose deadline (if they have one) is still open. A case on an open deadline is listed however
many notifications came after it. Every opening of a case is audited as a view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.adapters import inbox as queries
from pipeline.domain.model import SCHOOL_ROLES, DeadlineState, NotificationStatus, Role
from pipeline.service import casework
from pipeline.service.access import may_acknowledge, visible_notification
from pipeline.service.casework import acknowledgement_closes
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, Posted, posted_by, services_of, signed_in_as
from pipeline.web.pagination import Pages
from pipeline.web.render import environment, page
from pipeline.web.words import london

if TYPE_CHECKING:
    from pipeline.ports.records import DeadlineRecord as Deadline
    from pipeline.ports.records import NotificationRecord as Notification
    from pipeline.ports.records import UserRecord as User

router = APIRouter(include_in_schema=False)
READERS = (Role.DSL, Role.WORKER, Role.TEAM, Role.MANAGER)
ACKNOWLEDGERS = (Role.DSL, Role.WORKER, Role.TEAM)
DECIDED_ELSEWHERE = {"review": "/reviews/{event_id}", "decision": "/decisions/{event_id}"}
OUTCOME_LIMIT = 2000


def content_of(row: Notification) -> dict[str, Any]:
    """What the notification says; a reminder or escalation says it about its original notification."""
    content: dict[str, Any] = json.loads(row.content_json)
    original = content.get("original")
    return {**original, "_followup": content} if isinstance(original, dict) else content


def person_of(content: dict[str, Any]) -> dict[str, Any] | None:
    person = content.get("pupil") or content.get("child")
    return person if isinstance(person, dict) else None


@dataclass
class Case:
    """One item in an inbox: the copies of a notification this user's school or team holds, with its deadline."""

    rows: list[Notification]
    deadline: Deadline | None = None
    fired: list[Notification] = field(default_factory=list)

    @property
    def primary(self) -> Notification:
        ranked = sorted(self.rows, key=lambda r: (r.kind not in ("alert", "review", "decision"),
                                                  r.recipient_role != "dsl", r.created_at))
        return ranked[0]

    @property
    def content(self) -> dict[str, Any]:
        return content_of(self.primary)

    @property
    def person(self) -> dict[str, Any] | None:
        return person_of(self.content)

    @property
    def acknowledged(self) -> Notification | None:
        done = [r for r in self.rows if r.acknowledged_at is not None]
        return min(done, key=lambda r: r.acknowledged_at or r.created_at) if done else None

    @property
    def received_at(self) -> datetime:
        return min(r.created_at for r in self.rows)

    @property
    def latest_at(self) -> datetime:
        return max(r.created_at for r in self.rows)

    @property
    def is_new(self) -> bool:
        return not self.decided and all(r.status in (NotificationStatus.PENDING, NotificationStatus.DELIVERED)
                                        for r in self.rows)

    @property
    def decided(self) -> bool:
        """A match review or consent decision the front door has made (its deadline closed by the decision)."""
        return self.decide_at is not None and self.deadline is not None and self.deadline.state == "closed"

    def overdue(self, now: datetime) -> bool:
        d = self.deadline
        return self.acknowledged is None and d is not None and d.state == "open" and d.due_at <= now

    @property
    def decide_at(self) -> str | None:
        path = DECIDED_ELSEWHERE.get(self.primary.kind)
        return path.format(event_id=self.primary.event_id) if path else None


def reason_words(row: Notification) -> str:
    """Why this recipient has the notification, in words (a reminder or escalation names what was late)."""
    from pipeline.web.words import words

    reason = row.reason
    prefix = ""
    if reason.startswith("no contact on file for "):
        missing_for, _, reason = reason.removeprefix("no contact on file for ").partition(": ")
        prefix = f"Sent to you because there is no contact on file for the {words(missing_for).lower()}. "
    if row.kind in ("reminder", "escalation"):
        followup = json.loads(row.content_json)
        late = words(followup.get("deadline_kind")) if followup.get("deadline_kind") else "A deadline"
        return f"{prefix}{words(row.kind)}: {late.lower()} was not done by {london(followup.get('due_at'))}"
    return prefix + reason[:1].upper() + reason[1:]


def follow_up_words(row: Notification) -> str:
    """'Reminder sent' or 'Escalated to Head of service', for a reminder or escalation fired on a deadline."""
    from pipeline.web.words import words

    if row.kind == "reminder":
        if row.recipient_role in SCHOOL_ROLES:
            return "Reminder sent"
        return f"Reminder sent to {words(row.recipient_role)}"
    return f"Escalated to {words(row.recipient_role)}"


def build_cases(rows: Sequence[Notification], deadlines: Mapping[str, Deadline],
                fired: Sequence[Notification]) -> list[Case]:
    cases: dict[str, Case] = {}
    for row in rows:
        key = row.deadline_id or row.id
        case = cases.setdefault(key, Case([], deadlines.get(row.deadline_id or "")))
        case.rows.append(row)
    seen: set[tuple[str, str, int]] = set()
    for row in fired:
        found = cases.get(row.deadline_id or "")
        if found is None:
            continue
        # A reminder to the DSL and to the deputy is one event for the school.
        marker = (row.deadline_id or "", follow_up_words(row), int(row.created_at.timestamp()))
        if marker not in seen:
            seen.add(marker)
            found.fired.append(row)
    return list(cases.values())


def order_cases(cases: list[Case], now: datetime) -> list[Case]:
    """Overdue first, the longest overdue first; then the newest."""
    def rank(case: Case) -> tuple[bool, float]:
        if case.overdue(now):
            assert case.deadline is not None
            return False, case.deadline.due_at.timestamp()
        return True, -case.latest_at.timestamp()
    return sorted(cases, key=rank)


def waiting(case: Case) -> bool:
    """Whether the case still asks something of its holder: not acknowledged, not withheld, and its deadline (if
    it has one) still open. A decided review, a recorded interview or a found child closes it."""
    deadline = case.deadline
    return case.acknowledged is None and case.primary.status != NotificationStatus.WITHHELD and \
        (deadline is None or deadline.state == DeadlineState.OPEN)


def cases_for(request: Request, user: User) -> tuple[list[Case], bool]:
    """The user's newest notifications as cases, and every case still open on its deadline however old; and
    whether older notifications were left out (only ones whose deadline is closed, or that have none)."""
    services = services_of(request)
    with services.store.read() as s:
        newest = queries.notifications_in_scope(s, user, queries.NEWEST_KEPT)
        rows = {r.id: r for r in newest}
        rows.update((r.id, r) for r in queries.on_open_deadlines(s, user) if r.id not in rows)
        deadline_ids = [r.deadline_id for r in rows.values() if r.deadline_id]
        deadlines = queries.deadlines_by_id(s, deadline_ids)
        fired = list(queries.fired_on(s, deadline_ids))
    cases = order_cases(build_cases(list(rows.values()), deadlines, fired), services.clock())
    return cases, len(newest) >= queries.NEWEST_KEPT


SHOWN = {"all": "all cases", "waiting": "cases waiting for action"}  # ?show=, and the filter's links


@router.get("/notifications")
def inbox(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(*READERS))]) -> Response:
    everything, older_left_out = cases_for(request, visitor.user)
    now = services_of(request).clock()
    shown = request.query_params.get("show")
    shown = shown if shown in SHOWN else "all"
    still_waiting = [c for c in everything if waiting(c)]
    cases = still_waiting if shown == "waiting" else everything
    pages = Pages.of(request, len(cases))
    title = "Inbox" if shown == "all" else "Inbox: waiting for action"
    return page(request, "inbox.html", title=title if pages.count == 1 else f"{title} (page {pages.number} of "
                f"{pages.count})", cases=pages.slice(cases), pages=pages, older_left_out=older_left_out,
                pagination=pages.component(request, keep=("show",)), now=now, shown=shown, choices=SHOWN,
                total=len(everything), waiting=len(still_waiting),
                overdue=sum(1 for c in everything if c.overdue(now)))


def _case_page(request: Request, visitor: SignedIn, notification_id: str, status: int = 200, *,
               opened: bool = True, **values: Any) -> Response:
    """The case page; ``opened`` False when it is the same page sent back with an error (already audited)."""
    services = services_of(request)
    user = visitor.user
    with services.store.unit_of_work() as port:
        s = port.session
        row = visible_notification(port, user, notification_id)
        if row is None:
            raise PageNotFound()
        if opened:
            casework.record_view(port, row, user.email, services.clock())
        copies = [c for c in queries.school_copies(s, row)] if row.recipient_role in SCHOOL_ROLES else [row]
        deadline = queries.deadlines_by_id(s, [row.deadline_id] if row.deadline_id else []).get(row.deadline_id or "")
        fired = list(queries.fired_on(s, [row.deadline_id] if row.deadline_id else []))
        case = build_cases(copies, {deadline.id: deadline} if deadline else {}, fired)[0]
        acknowledged = case.acknowledged
        acknowledged_by = port.user_by_id(acknowledged.acknowledged_by) if acknowledged and \
            acknowledged.acknowledged_by else None
    return page(request, "case.html", status=status, title="Safeguarding notification", case=case, row=row,
                now=services.clock(), acknowledged=acknowledged,
                acknowledged_by=acknowledged_by.email if acknowledged_by else None,
                can_acknowledge=may_acknowledge(user, row) and case.decide_at is None,
                escalation_stops=_escalation_stops(row, case), **values)


@router.get("/notifications/{notification_id}")
def case_page(notification_id: str, request: Request,
              visitor: Annotated[SignedIn, Depends(signed_in_as(*READERS))]) -> Response:
    return _case_page(request, visitor, notification_id,
                      just_acknowledged=request.query_params.get("acknowledged") == "1")


def _escalation_stops(row: Notification, case: Case) -> bool:
    return case.deadline is not None and acknowledgement_closes(row.kind, case.deadline.kind)


@router.post("/notifications/{notification_id}/acknowledge")
def acknowledge(notification_id: str, request: Request,
                posted: Annotated[Posted, Depends(posted_by(*ACKNOWLEDGERS))]) -> Response:
    services = services_of(request)
    user = posted.visitor.user
    outcome = posted.text("outcome")
    if not outcome or len(outcome) > OUTCOME_LIMIT:
        message = "Enter what you have done about this notification" if not outcome else \
            f"What you have done must be {OUTCOME_LIMIT:,} characters or fewer"
        return _case_page(request, posted.visitor, notification_id, 400, opened=False, outcome=outcome,
                          errors=[{"text": message, "href": "#outcome"}])
    refused = None
    with services.store.unit_of_work() as port:
        row = visible_notification(port, user, notification_id)
        if row is None or not may_acknowledge(user, row) or user.id is None or row.kind in DECIDED_ELSEWHERE:
            raise PageNotFound()
        try:
            casework.acknowledge(port, row, user.email, user.id, outcome, services.clock())
        except casework.CaseworkError:
            refused = "This notification is withheld until the front door decides, so it cannot be acknowledged"
    if refused:
        return _case_page(request, posted.visitor, notification_id, 409, opened=False, errors=[{"text": refused}])
    return RedirectResponse(f"/notifications/{notification_id}?acknowledged=1", status_code=303)




def _row(key: str, value: str) -> dict[str, Any]:
    return {"key": {"text": key}, "value": {"text": value}}


def steps_to_come(case: Case) -> list[str]:
    """While a case's deadline is open, what its ladder will still do, in words: 'Wednesday 25 November 2026 at
    midday: a reminder to the designated safeguarding lead', ... (the steps already taken are listed after it,
    each with its time)."""
    from pipeline.web.words import london

    deadline = case.deadline
    if deadline is None or deadline.state != "open":
        return []
    coming = []
    for step in json.loads(deadline.steps_json)[deadline.escalation_level:]:
        told = [_in_sentence(role) for role in step.get("notify") or ()]
        if not told:
            continue  # a check the pipeline makes itself
        who = " and ".join(told)
        coming.append(f"{london(step['at'])}: " + (f"a reminder to {who}" if step.get("action") == "reminder"
                                                    else f"{who} told"))
    return coming


def _in_sentence(role: str) -> str:
    """'dsl' -> 'the designated safeguarding lead'; a council ('Council 888') or a council's own team code kept."""
    from pipeline.web.words import WORDS, role_words

    text = role_words(role)
    return "the " + text[0].lower() + text[1:] if role in WORDS else text


def ladder_label(case: Case) -> str:
    """What the steps to come depend on, for this recipient."""
    if case.decide_at is not None:
        return "If it is not decided"
    if case.deadline is not None and acknowledgement_closes(case.primary.kind, case.deadline.kind):
        return "If it is not acknowledged"
    return "Still to come on this deadline"


def summary_rows(case: Case) -> list[dict[str, Any]]:
    """The case in plain English, for a GOV.UK summary list; only the fields this recipient was sent."""
    from pipeline.web.words import full_name, london, long_date, words

    content = case.content
    primary = case.primary
    rows: list[dict[str, Any]] = []
    person = case.person
    if person is not None:
        rows.append(_row("Name", full_name(person)))
        rows.append(_row("Date of birth", long_date(person.get("date_of_birth"))))
        if person.get("upn"):
            rows.append(_row("Unique pupil number", str(person["upn"])))
        if person.get("nhs_number"):
            rows.append(_row("NHS number", str(person["nhs_number"])))
        if person.get("postcode"):
            rows.append(_row("Postcode given", str(person["postcode"])))
        if person.get("school_name"):
            rows.append(_row("School given by the family", str(person["school_name"])))
    rows.append(_row("About", words(primary.pathway)))
    rows.append(_row("Why you have this", reason_words(primary)))
    if content.get("status") in ("missing", "found"):
        rows.append(_row("What has happened", "Reported missing" if content["status"] == "missing" else "Found"))
    fields: list[tuple[str, str, Callable[[Any], str]]] = [
              ("attendance_date", "Date of attendance", long_date), ("hospital_ods_code", "Hospital (ODS code)", str),
              ("risk_summary", "Risk summary from the hospital", str),
              ("clinician_contact", "Clinician to contact", str), ("admitted", "Admitted to hospital", words),
              ("exploitation_screening", "Exploitation screening", words), ("consent", "Consent to share", words),
              ("shared_without_consent_reason", "Reason shared without consent", str),
              ("reported_at", "Reported missing", london), ("last_seen_at", "Last seen", london),
              ("risk_grade", "Police risk grade", words), ("missing_from", "Missing from", words),
              ("found_at", "Found", london), ("returned_to", "Returned to", words)]
    for name, label, show in fields:
        if name in content and content[name] not in (None, ""):
            rows.append(_row(label, show(content[name])))
    flags = content.get("exploitation_flags")
    if isinstance(flags, list) and flags:
        rows.append(_row("Exploitation flags", ", ".join(words(f) for f in flags)))
    reasons = content.get("reasons")
    if isinstance(reasons, list) and reasons:
        rows.append(_row("Reasons it was sent", "; ".join(str(r) for r in reasons)))
    rows.append(_row("Received", london(case.received_at)))
    if case.deadline is not None:
        rows.append(_row(f"{words(case.deadline.kind)} due", london(case.deadline.due_at)))
        coming = steps_to_come(case)
        if coming:
            rows.append(_row(ladder_label(case), "; then ".join(coming)))
    for fired in case.fired:
        rows.append(_row(follow_up_words(fired), london(fired.created_at)))
    return rows


environment.filters.update(follow_up=follow_up_words, summary_rows=summary_rows, reason_words=reason_words)
