"""The front door's work: match reviews ("this child" or "none of these", with a reason) and consent
decisions on withheld attendances (release or close, with a reason).

Decisions go through the same casework services as ``POST /api/events/{id}/review`` and ``/decision``, so
the notifications the rules call for follow at once, and every decision is audited with who made it.
Each opening of a review or decision page (which shows a child's identity) is audited as a view.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.adapters import reviews as queries
from pipeline.adapters.repository import Repository
from pipeline.domain.model import FRONT_DOOR, ChildFacts, Role
from pipeline.service import casework
from pipeline.service.handlers import record_of
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, Posted, posted_by, services_of, signed_in_as
from pipeline.web.pagination import Pages
from pipeline.web.render import page
from pipeline.web.words import long_date, words

if TYPE_CHECKING:
    from sqlmodel import Session

    from pipeline.ports.records import DeadlineRecord as Deadline
    from pipeline.ports.records import EventRecord as Event

router = APIRouter(include_in_schema=False)
DECIDERS = (Role.TEAM, Role.MANAGER)
NONE_OF_THESE = "none"

FIELDS = [("given_name", "Given name"), ("family_name", "Family name"), ("date_of_birth", "Date of birth"),
          ("sex", "Sex"), ("postcode", "Postcode"), ("nhs_number", "NHS number"), ("school_name", "School")]

# Other names a matcher may give the same fields.
FIELD_ALIASES = {"school": "school_name", "dob": "date_of_birth", "nhs": "nhs_number", "forename": "given_name",
                 "surname": "family_name", "first_name": "given_name", "last_name": "family_name"}

# The matcher's comparison levels in words (an unknown level is written by ``words``).
LEVELS = {
    "exact": "Exactly the same", "equal": "Exactly the same", "agree": "The same", "full": "The same",
    "different": "Different", "disagree": "Different", "absent": "Not given on one side",
    "missing": "Not given on one side", "nickname": "A nickname or other form of the name",
    "similar": "Similar spelling", "day_month_swap": "Day and month swapped", "one_digit": "One digit different",
    "sector": "Same postcode sector", "district": "Same postcode district", "transposed": "Names swapped round",
}


def _front_door(visitor: SignedIn) -> None:
    if visitor.user.role == Role.TEAM and visitor.user.team != FRONT_DOOR:
        raise PageNotFound()


def _sent_at(record: dict[str, Any]) -> datetime | None:
    """When it happened, as the sender said: the attendance's arrival or the missing report."""
    moment = record.get("arrived_at") or record.get("reported_at")
    return moment if isinstance(moment, datetime) else None


def _day_of(record: dict[str, Any]) -> date:
    moment = _sent_at(record)
    return moment.date() if moment is not None else date.today()


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return long_date(value)
    return str(value)


def _normal(value: Any) -> str:
    return "".join(str(value).lower().split()) if value not in (None, "") else ""


def agreement(sent: Any, held: Any, level: str | None) -> str:
    """Field agreement in words: the matcher's level when it recorded one, else a plain comparison."""
    if level:
        return LEVELS.get(level, words(level))
    if _normal(sent) == "" or _normal(held) == "":
        return "Not given on one side"
    return "The same" if _normal(sent) == _normal(held) else "Different"


def candidate_view(session: Any, candidate: dict[str, Any], sent: dict[str, Any], day: date) -> dict[str, Any]:
    facts: ChildFacts | None = queries.child_facts(session, candidate["child_id"], day)
    held: dict[str, Any] = {}
    if facts is not None:
        identity = facts.identity
        held = {"given_name": identity.given_name, "family_name": identity.family_name,
                "date_of_birth": identity.date_of_birth, "sex": words(identity.sex) if identity.sex else None,
                "postcode": identity.postcode, "nhs_number": identity.nhs_number,
                "school_name": ", ".join(e.school.name for e in facts.enrolments) or None}
    levels = {FIELD_ALIASES.get(str(c.get("field")), c.get("field")): c for c in candidate["comparisons"]
              if isinstance(c, dict)}
    rows = []
    for field, label in FIELDS:
        sent_value = words(sent.get(field)) if field == "sex" and sent.get(field) else sent.get(field)
        comparison = levels.get(field) or {}
        rows.append({"label": label, "sent": _text(sent_value) or "Not given", "held": _text(held.get(field))
                     or "Not held", "agreement": agreement(sent_value, held.get(field), comparison.get("level")),
                     "weight": comparison.get("weight")})
    probability = candidate["probability"]
    return {"child_id": candidate["child_id"], "rows": rows,
            "name": " ".join(p for p in (held.get("given_name"), held.get("family_name")) if p) or "A child",
            "date_of_birth": _text(held.get("date_of_birth")),
            "probability": f"{round(float(probability) * 100, 1):g}%" if probability is not None else None}


@router.get("/reviews")
def review_queue(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(*DECIDERS))]) -> Response:
    _front_door(visitor)
    services = services_of(request)
    with services.store.read() as s:
        pages, waiting = _page_of(request, s, "review", "match_review")
        items = []
        for event, deadline in waiting:
            record = record_of(event)
            items.append({"event": event, "deadline": deadline, "child": record.get("child") or {},
                          "sent_at": _sent_at(record), "candidates": len(queries.candidates_of(event))})
    return page(request, "reviews.html", title="Match reviews", items=items, now=services.clock(),
                pages=pages, pagination=pages.component(request),
                decided=request.query_params.get("decided") == "1")


def _page_of(request: Request, s: Session, status: str, deadline_kind: str
             ) -> tuple[Pages, Sequence[tuple[Event, Deadline | None]]]:
    """The page of the queue the request asks for (the nearest that exists), with its events."""
    pages = Pages.of(request, queries.open_event_count(s, status))
    return pages, queries.open_events(s, status, deadline_kind, offset=pages.start, limit=pages.per_page)


def _review_page(request: Request, visitor: SignedIn, event_id: str, status: int = 200, **values: Any) -> Response:
    _front_door(visitor)
    services = services_of(request)
    with services.store.transaction() as s:
        event = queries.event_by_id(s, event_id)
        if event is None or event.event_type not in ("self-harm-attendance", "missing-reported"):
            raise PageNotFound()
        record = record_of(event)
        sent = record.get("child") or {}
        day = _day_of(record)
        candidates = [candidate_view(s, c, sent, day) for c in queries.candidates_of(event)]
        deadline = queries.deadline_for(s, event.event_id, "match_review")
        decisions = list(queries.decisions_on(s, event.event_id))
        Repository(s).audit(services.clock(), visitor.user.email, "viewed", event.event_id, "match review opened")
    return page(request, "review.html", status=status, title="Match review", event=event, sent=sent,
                sent_at=_sent_at(record),
                sent_rows=[{"label": label, "value": _text(words(sent.get(f)) if f == "sex" and sent.get(f)
                                                           else sent.get(f)) or "Not given"} for f, label in FIELDS],
                candidates=candidates, deadline=deadline, decisions=decisions, now=services.clock(),
                open=event.status == "review", outcome=_review_outcome(event, candidates, decisions), **values)


def _review_outcome(event: Any, candidates: list[dict[str, Any]], decisions: list[Any]) -> str | None:
    """What the front door decided, in words, once a person has: which child, or none."""
    if event.status == "review" or not any(d.action == "matched" for d in decisions):
        return None
    if event.child_id is None:
        return "None of these children: the event is not linked to a child."
    chosen = next((c for c in candidates if c["child_id"] == event.child_id), None)
    return f"This child: {chosen['name']}." if chosen else "Linked to a child who was not among the candidates."



def reason_errors(reason: str) -> list[dict[str, str]]:
    """The error summary's entry for a decision's reason: required, and at most ``casework.REASON_LIMIT``
    characters."""
    problem = casework.reason_problem(reason)
    if problem == "blank":
        return [{"text": "Enter the reason for your decision", "href": "#reason"}]
    if problem == "too_long":
        return [{"text": f"The reason must be {casework.REASON_LIMIT:,} characters or fewer", "href": "#reason"}]
    return []


@router.get("/reviews/{event_id}")
def review_page(event_id: str, request: Request,
                visitor: Annotated[SignedIn, Depends(signed_in_as(*DECIDERS))]) -> Response:
    return _review_page(request, visitor, event_id)


@router.post("/reviews/{event_id}")
def decide_review(event_id: str, request: Request,
                  posted: Annotated[Posted, Depends(posted_by(*DECIDERS))]) -> Response:
    _front_door(posted.visitor)
    services = services_of(request)
    with services.store.read() as s:
        event = queries.event_by_id(s, event_id)
        if event is None:
            raise PageNotFound()
        allowed = {c["child_id"] for c in queries.candidates_of(event)} | {NONE_OF_THESE}
    return _record_decision(
        request, posted, event_id, "child_id", allowed, "Select the child this is about, or none of these",
        _review_page, lambda repo, ev, choice, reason, now: casework.decide_review(
            repo, ev, services.ctx, posted.visitor.user.email, None if choice == NONE_OF_THESE else choice, reason,
            now), "/reviews?decided=1")


def _record_decision(request: Request, posted: Posted, event_id: str, field: str, allowed: Collection[str],
                     unchosen: str, show: Callable[..., Response],
                     decide: Callable[[Repository, Any, str, str, datetime], Any], done: str) -> Response:
    """A decision posted from a review or consent page: its choice (form field ``field``, one of ``allowed``,
    else the error ``unchosen``) and its reason checked (if wrong, the page again, 400, with what was entered),
    then ``decide(repo, event, choice, reason, now)`` in one transaction (the page again, 409, if it was already
    decided), then back to the queue at ``done``."""
    choice, reason = posted.text(field), posted.text("reason")
    errors = [] if choice in allowed else [{"text": unchosen, "href": f"#{field}"}]
    errors += reason_errors(reason)
    if errors:
        return show(request, posted.visitor, event_id, 400, errors=errors, choice=choice, reason=reason)
    refused = _decide(request, event_id, lambda repo, event, now: decide(repo, event, choice, reason, now))
    if refused:
        return show(request, posted.visitor, event_id, 409, errors=[{"text": refused}])
    return RedirectResponse(done, status_code=303)


def _decide(request: Request, event_id: str, action: Any) -> str | None:
    """Run a casework decision in one transaction; the reason it was refused, or None."""
    services = services_of(request)
    try:
        with services.store.transaction() as s:
            event = queries.event_by_id(s, event_id)
            if event is None:
                raise PageNotFound()
            action(Repository(s, postgres=services.store.is_postgres), event, services.clock())
    except casework.CaseworkError:
        return "This has already been decided"
    services.on_accepted()
    return None


@router.get("/decisions")
def decision_queue(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(*DECIDERS))]) -> Response:
    _front_door(visitor)
    services = services_of(request)
    with services.store.read() as s:
        pages, waiting = _page_of(request, s, "withheld", "consent_decision")
        items = [{"event": e, "deadline": d, "record": record_of(e)} for e, d in waiting]
    return page(request, "decisions.html", title="Consent decisions", items=items, now=services.clock(),
                pages=pages, pagination=pages.component(request),
                decided=request.query_params.get("decided") == "1")


def _decision_page(request: Request, visitor: SignedIn, event_id: str, status: int = 200, **values: Any) -> Response:
    _front_door(visitor)
    services = services_of(request)
    with services.store.transaction() as s:
        event = queries.event_by_id(s, event_id)
        if event is None or event.event_type != "self-harm-attendance":
            raise PageNotFound()
        record = record_of(event)
        deadline = queries.deadline_for(s, event.event_id, "consent_decision")
        decisions = list(queries.decisions_on(s, event.event_id))
        Repository(s).audit(services.clock(), visitor.user.email, "viewed", event.event_id, "consent decision opened")
    return page(request, "decision.html", status=status, title="Consent decision", event=event, record=record,
                deadline=deadline, decisions=decisions, now=services.clock(), open=event.status == "withheld",
                **values)


@router.get("/decisions/{event_id}")
def decision_page(event_id: str, request: Request,
                  visitor: Annotated[SignedIn, Depends(signed_in_as(*DECIDERS))]) -> Response:
    return _decision_page(request, visitor, event_id)


@router.post("/decisions/{event_id}")
def decide_consent(event_id: str, request: Request,
                   posted: Annotated[Posted, Depends(posted_by(*DECIDERS))]) -> Response:
    _front_door(posted.visitor)
    services = services_of(request)
    return _record_decision(
        request, posted, event_id, "decision", ("release", "close"), "Select whether to release it or close it",
        _decision_page, lambda repo, ev, choice, reason, now: casework.decide_consent(
            repo, ev, services.ctx, posted.visitor.user.email, choice, reason, now), "/decisions?decided=1")
