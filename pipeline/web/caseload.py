"""A worker's caseload: each allocated child with their missing episodes, the deadlines on them (return
interview due, trigger meeting due) and the worker's notifications about them. Where the council assigns
return home interviews to the allocated worker (``missing.return_interview_assignee: worker``), the worker
records the interview's outcome here; it goes through the same intake as any producer's
``return-interview-recorded`` event.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.adapters import caseload as queries
from pipeline.domain.calendar import LONDON
from pipeline.domain.model import Role
from pipeline.entrypoints.intake_routes import send_to_kafka
from pipeline.service.intake import IntakeResult, Submission
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, Posted, posted_by, services_of, signed_in_as
from pipeline.web.render import page

if TYPE_CHECKING:
    from pipeline.ports.episodes import EpisodeRecord as MissingEpisode
    from pipeline.ports.records import DeadlineRecord as Deadline
    from pipeline.ports.records import InvolvementRecord as Involvement
    from pipeline.ports.records import NotificationRecord as Notification
    from pipeline.ports.records import UserRecord as User

router = APIRouter(include_in_schema=False)
OUTCOMES = ("COMPLETED", "DECLINED", "NOT_POSSIBLE", "NOT_HELD_BY_DECISION")
ATTEMPT_SLOTS = 3
TEXT_LIMIT = 2000


@dataclass
class ChildOnCaseload:
    involvement: Involvement
    child_id: str | None
    episodes: list[dict[str, Any]] = field(default_factory=list)
    trigger_meetings: list[Deadline] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


def rhi_assigned_to_workers(request: Request) -> bool:
    policy = services_of(request).ctx.policy
    return str(policy.setting("missing", "return_interview_assignee", default="RHI_PROVIDER")) == "worker"


def caseload(request: Request, user: User) -> list[ChildOnCaseload]:
    services = services_of(request)
    with services.store.read() as s:
        involvements = list(queries.involvements_of(s, user.email))
        known = queries.child_ids(s, [k for i in involvements for k in queries.person_keys(i)])
        children: list[ChildOnCaseload] = []
        for involvement in involvements:
            child_id = next((known[k] for k in queries.person_keys(involvement) if k in known), None)
            children.append(ChildOnCaseload(involvement, child_id))
        ids = [c.child_id for c in children if c.child_id]
        episodes = list(queries.episodes_of(s, ids))
        deadlines = list(queries.deadlines_of(s, [e.episode_id for e in episodes], ids))
        notes = list(queries.notifications_about(s, user, ids))
    by_child = {c.child_id: c for c in children if c.child_id}
    for episode in episodes:
        child = by_child.get(episode.child_id or "")
        if child is not None:
            child.episodes.append({"row": episode, "flags": json.loads(episode.exploitation_flags),
                                   "deadlines": [d for d in deadlines if d.subject_id == episode.episode_id
                                                 and d.kind != "episode_length_check"]})
    for deadline in deadlines:
        if deadline.kind == "trigger_meeting" and deadline.state == "open" and deadline.child_id in by_child:
            by_child[deadline.child_id].trigger_meetings.append(deadline)
    for note, child_id in notes:
        by_child[child_id].notifications.append(note)
    return children


@router.get("/caseload")
def caseload_page(request: Request, visitor: Annotated[SignedIn, Depends(signed_in_as(Role.WORKER))]) -> Response:
    return page(request, "caseload.html", title="Caseload", children=caseload(request, visitor.user),
                now=services_of(request).clock(), can_record=rhi_assigned_to_workers(request),
                recorded=request.query_params.get("recorded") == "1")


def _allocated_episode(request: Request, user: User, episode_id: str) -> MissingEpisode:
    """The episode if its child is on this worker's caseload and the council has workers record RHIs."""
    if not rhi_assigned_to_workers(request):
        raise PageNotFound()
    services = services_of(request)
    with services.store.read() as s:
        episode = queries.episode(s, episode_id)
        involvements = list(queries.involvements_of(s, user.email))
        known = queries.child_ids(s, [k for i in involvements for k in queries.person_keys(i)])
    if episode is None or episode.child_id is None or episode.child_id not in known.values() \
            or episode.found_at is None:
        raise PageNotFound()
    return episode


def _form_page(request: Request, episode: MissingEpisode, status: int = 200, **values: Any) -> Response:
    return page(request, "return_interview.html", title="Record a return home interview", status=status,
                episode=episode, outcomes=OUTCOMES, slots=range(1, ATTEMPT_SLOTS + 1),
                form=values.pop("form", {}), **values)


@router.get("/caseload/episodes/{episode_id}/return-interview")
def return_interview_form(episode_id: str, request: Request,
                          visitor: Annotated[SignedIn, Depends(signed_in_as(Role.WORKER))]) -> Response:
    return _form_page(request, _allocated_episode(request, visitor.user, episode_id))


def _moment(form: Posted, prefix: str, required: bool, label: str,
            errors: list[dict[str, str]], now: datetime) -> datetime | None:
    """A date (day, month, year) and a time (HH:MM) typed in London time, or None when left empty."""
    day, month, year, clock = (form.text(f"{prefix}-{part}") for part in ("day", "month", "year", "time"))
    if not any((day, month, year, clock)):
        if required:
            errors.append({"text": f"Enter {label}", "href": f"#{prefix}-day"})
        return None
    try:
        hours, minutes = (int(p) for p in (clock or "").replace(".", ":").split(":"))
        moment = datetime(int(year), int(month), int(day), hours, minutes, tzinfo=LONDON)
    except ValueError:
        errors.append({"text": f"Enter {label} as a real date and a time such as 14:30", "href": f"#{prefix}-day"})
        return None
    if moment > now:
        errors.append({"text": f"{label[:1].upper()}{label[1:]} must be in the past", "href": f"#{prefix}-day"})
        return None
    return moment


def send_event(request: Request, event_type: str, record: dict[str, Any], user: User) -> IntakeResult:
    """Through the same intake as a producer's POST (on Kafka, to the event's topic)."""
    services = services_of(request)
    submission = Submission(event_type, json.dumps(record).encode(), "application/json", user.id, "web")
    result = send_to_kafka(services, submission) if services.event_sender is not None \
        else services.intake.submit(submission)
    if result.accepted:
        services.on_accepted()
    return result


@router.post("/caseload/episodes/{episode_id}/return-interview")
def record_return_interview(episode_id: str, request: Request,
                            posted: Annotated[Posted, Depends(posted_by(Role.WORKER))]) -> Response:
    episode = _allocated_episode(request, posted.visitor.user, episode_id)
    now = services_of(request).clock()
    errors: list[dict[str, str]] = []
    outcome = posted.text("outcome")
    if outcome not in OUTCOMES:
        errors.append({"text": "Select what happened", "href": "#outcome"})
    held_at = _moment(posted, "held", outcome == "COMPLETED", "when the interview was held", errors, now)
    attempts = []
    for slot in range(1, ATTEMPT_SLOTS + 1):
        method = posted.text(f"attempt{slot}-method")[:200]
        at = _moment(posted, f"attempt{slot}", bool(method), f"when attempt {slot} was made", errors, now)
        if at is not None and not method:
            errors.append({"text": f"Enter how attempt {slot} was made", "href": f"#attempt{slot}-method"})
        elif at is not None:
            attempts.append({"at": at.isoformat(), "method": method})
    if outcome == "NOT_POSSIBLE" and not attempts and not any(e["href"].startswith("#attempt") for e in errors):
        errors.append({"text": "Enter at least one attempt to hold the interview", "href": "#attempt1-day"})
    reason = posted.text("reason")
    if outcome == "NOT_HELD_BY_DECISION" and not reason:
        errors.append({"text": "Enter the reason for the decision not to hold an interview", "href": "#reason"})
    if len(reason) > TEXT_LIMIT:
        errors.append({"text": f"The reason must be {TEXT_LIMIT:,} characters or fewer", "href": "#reason"})
    if errors:
        return _form_page(request, episode, 400, errors=errors, form=dict(posted.form))
    record = {"event_id": str(uuid.uuid4()), "episode_id": episode.episode_id, "recorded_at": now.isoformat(),
              "outcome": outcome, "held_at": held_at.isoformat() if held_at else None, "by_role": "worker",
              "attempts": attempts, "reason": reason or None}
    result = send_event(request, "return-interview-recorded", record, posted.visitor.user)
    if not result.accepted:
        fields = ", ".join(e.get("field", "") for e in result.body.get("errors", [])) or "the form"
        return _form_page(request, episode, 422, form=dict(posted.form),
                          errors=[{"text": f"The interview could not be recorded: check {fields}", "href": "#outcome"}])
    return RedirectResponse("/caseload?recorded=1", status_code=303)
