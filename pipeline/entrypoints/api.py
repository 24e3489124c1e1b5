"""The HTTP API (JSON, bearer tokens) and the small web app, as the contract describes.

Routes only authenticate, check scope, and hand over to the intake or the casework services. Out of
scope is answered exactly as not found. Error bodies name fields, never values.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, StringConstraints
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from pipeline.adapters import deliveries
from pipeline.adapters import paging as keysets
from pipeline.adapters import tables as t
from pipeline.adapters.repository import Repository
from pipeline.bootstrap import Services
from pipeline.domain.model import FRONT_DOOR, Role
from pipeline.entrypoints import callbacks, reviews_api
from pipeline.entrypoints.paging import Paging
from pipeline.service import casework
from pipeline.service.access import NOTIFICATION_READERS, may_acknowledge, notification_scope, visible_notification
from pipeline.service.intake import RETRY_AFTER_SECONDS, IntakeResult, Submission
from pipeline.service.users import user_for_token

log = logging.getLogger(__name__)
NOT_FOUND = {"detail": "Not Found"}  # byte for byte what an unmatched route answers


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def forbidden() -> ApiError:
    return ApiError(403, {"detail": "forbidden"})


class Acknowledgement(BaseModel):
    outcome: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ConsentDecision(BaseModel):
    decision: str  # release | close
    reason: str


class ReviewDecision(BaseModel):
    child_id: str | None
    reason: str


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def read_session(request: Request) -> Iterator[Session]:
    with services_of(request).store.read() as session:
        yield session


def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> t.User:
    """The caller, from a bearer token, or for reading (GET) from the web app's server-side session; 401
    otherwise. A change through the API always needs the bearer token (the web app's forms have their own
    routes, with CSRF protection)."""
    from pipeline.web.auth import visitor_of

    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        with services_of(request).store.read() as session:
            user = user_for_token(session, token) if token else None
    elif request.method in ("GET", "HEAD"):
        visitor = visitor_of(request)
        user = visitor.user if visitor is not None else None
    else:
        user = None
    if user is None:
        raise ApiError(401, {"detail": "authentication required"})
    return user


CurrentUser = Annotated[t.User, Depends(current_user)]
SessionDep = Annotated[Session, Depends(read_session)]
PagingDep = Annotated[Paging, Depends()]


def send_to_kafka(services: Services, submission: Submission) -> IntakeResult:
    """Kafka deployment: validate as the embedded intake does, then 202 once the broker acked (acks=all)."""
    return services.intake.send_to_topic(services.event_sender, submission)


def create_app(services: Services) -> FastAPI:
    # No trailing-slash redirects: they are built from the Host header, and a wrong path is simply 404.
    app = FastAPI(title="Safeguarding partnership pipeline", docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.services = services

    @app.exception_handler(ApiError)
    def _api_error(_: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body, status_code=error.status, headers=headers)

    @app.exception_handler(Exception)
    def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # Type and route only: an exception's text can carry personal data (e.g. a database error's values).
        route = request.scope.get("route")
        log.error("unexpected %s on %s %s", type(error).__name__, request.method, getattr(route, "path", "?"))
        return JSONResponse({"detail": "internal error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg", "invalid")}
                  for e in error.errors()]
        return JSONResponse({"errors": errors}, status_code=422)

    def require(user: t.User, *roles: Role) -> None:
        if user.role not in roles:
            raise forbidden()

    @app.get("/health")
    def health() -> JSONResponse:
        ok = services.ready.is_set()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    @app.post("/api/events/{event_type}")
    async def post_event(event_type: str, request: Request, user: CurrentUser) -> JSONResponse:
        require(user, Role.PRODUCER)
        limit = services.intake.max_body_bytes
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                break  # read no further: the intake reports the size and keeps the head as a dead letter
        submission = Submission(event_type, bytes(body), request.headers.get("content-type", "application/json"),
                                user.id, "http")
        if services.event_sender is not None:
            result = await run_in_threadpool(send_to_kafka, services, submission)
        else:
            result = await asyncio.wrap_future(services.intake.submit_grouped(submission))
        if result.accepted:
            services.on_accepted()
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)} if result.status_code == 503 else None
        return JSONResponse(result.body, status_code=result.status_code, headers=retry)

    @app.get("/api/events/{event_id}")
    def get_event(event_id: str, user: CurrentUser) -> dict[str, Any]:
        require(user, Role.PRODUCER, Role.MANAGER)
        event_id = event_id.lower()  # event ids are stored in lower case: one UUID, one event
        with services.store.read() as s:
            event = s.exec(select(t.Event).where(t.Event.event_id == event_id)).first()
            if event is None:
                return _dead_lettered(s, event_id, user)
            if user.role == Role.PRODUCER and event.producer_id != user.id:
                raise not_found()
            notifications = s.exec(select(t.Notification).where(t.Notification.event_id == event_id)
                                   .order_by(col(t.Notification.created_at).desc())).all()
        body: dict[str, Any] = {
            "event_id": event.event_id, "status": event.status,
            "match": {"outcome": event.match_outcome, "child_id": event.child_id},
            "notifications": [{"id": n.id, "recipient_role": n.recipient_role} for n in notifications],
        }
        if user.role == Role.MANAGER and event.match_json:
            body["match"]["breakdown"] = json.loads(event.match_json)
        return body

    def _dead_lettered(s: Session, event_id: str, user: t.User) -> dict[str, Any]:
        """An event rejected at intake, for the producer that sent it (or a manager); never its payload."""
        query = select(t.DeadLetter.id).where(t.DeadLetter.event_id == event_id)
        if user.role == Role.PRODUCER:
            query = query.where(t.DeadLetter.producer_id == user.id)
        if s.exec(query.limit(1)).first() is None:
            raise not_found()
        return {"event_id": event_id, "status": "dead_lettered", "match": {"outcome": None, "child_id": None},
                "notifications": []}

    @app.post("/api/events/{event_id}/decision")
    def decide_consent(event_id: str, decision: ConsentDecision, user: CurrentUser) -> dict[str, Any]:
        _front_door(user)
        if decision.decision not in ("release", "close"):
            raise ApiError(422, {"errors": [{"field": "decision", "message": "must be release or close"}]})
        return _casework(event_id, user, lambda repo, event, now: casework.decide_consent(
            repo, event, services.ctx, user.email, decision.decision, decision.reason, now))

    @app.post("/api/events/{event_id}/review")
    def decide_review(event_id: str, decision: ReviewDecision, user: CurrentUser) -> dict[str, Any]:
        _front_door(user)
        return _casework(event_id, user, lambda repo, event, now: casework.decide_review(
            repo, event, services.ctx, user.email, decision.child_id, decision.reason, now))

    def _front_door(user: t.User) -> None:
        if not (user.role == Role.MANAGER or (user.role == Role.TEAM and user.team == FRONT_DOOR)):
            raise forbidden()

    def _casework(event_id: str, user: t.User, action: Any) -> dict[str, Any]:
        event_id = event_id.lower()
        now = services.clock()
        try:
            with services.store.transaction() as s:
                event = s.exec(select(t.Event).where(t.Event.event_id == event_id)).first()
                if event is None:
                    raise not_found()
                action(Repository(s, postgres=services.store.is_postgres), event, now)
                status = event.status
        except casework.CaseworkError as error:
            raise ApiError(409, {"detail": str(error)}) from error
        services.on_accepted()
        return {"event_id": event_id, "status": status}

    def notification_json(n: t.Notification, detail: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": n.id, "pathway": n.pathway, "kind": n.kind, "recipient_role": n.recipient_role,
            "status": n.status, "urgency": n.urgency, "created_at": iso(n.created_at),
            "acknowledged_at": iso(n.acknowledged_at),
        }
        if detail:
            body.update({"reason": n.reason, "content": json.loads(n.content_json), "outcome": n.outcome,
                         "event_id": n.event_id, "school_urn": n.school_urn})
        return body

    @app.get("/api/notifications")
    def list_notifications(user: CurrentUser, s: SessionDep, paging: PagingDep,
                           status: str | None = None) -> list[dict[str, Any]]:
        if user.role not in NOTIFICATION_READERS:
            raise forbidden()
        query = select(t.Notification).where(notification_scope(user))
        if status:
            query = query.where(t.Notification.status == status)
        page = _page(s, query, keysets.NOTIFICATIONS, paging, notification_scope(user))
        paging.link_next(page, status=status)
        return [notification_json(n) for n in page.rows]

    def _page(s: Session, query: Any, keyset: keysets.Keyset, paging: Paging, *scope: Any) -> keysets.Page[Any]:
        page = keysets.read_page(s, query, keyset, limit=paging.limit, before=paging.before, scope=scope)
        if page is None:
            raise not_found()  # a `before` id that is unknown or out of scope, answered alike
        return page

    def _visible(s: Session, user: t.User, notification_id: str) -> t.Notification:
        if user.role not in NOTIFICATION_READERS:
            raise forbidden()
        row = visible_notification(s, user, notification_id)
        if row is None:
            raise not_found()
        return row

    @app.get("/api/notifications/{notification_id}")
    def get_notification(notification_id: str, user: CurrentUser) -> dict[str, Any]:
        with services.store.transaction() as s:
            row = _visible(s, user, notification_id)
            casework.record_view(Repository(s), row, user.email, services.clock())
            return {**notification_json(row, detail=True), "deliveries": deliveries.summary(s, row.id)}

    @app.post("/api/notifications/{notification_id}/acknowledge")
    def acknowledge(notification_id: str, ack: Acknowledgement, user: CurrentUser) -> dict[str, Any]:
        if user.role not in (Role.DSL, Role.WORKER, Role.TEAM):
            raise forbidden()
        try:
            with services.store.transaction() as s:
                row = _visible(s, user, notification_id)
                if not may_acknowledge(user, row):
                    raise not_found()
                assert user.id is not None
                casework.acknowledge(Repository(s), row, user.email, user.id, ack.outcome, services.clock())
                return notification_json(row)
        except casework.CaseworkError as error:
            raise ApiError(409, {"detail": str(error)}) from error

    @app.get("/api/deadlines")
    def deadlines(user: CurrentUser, s: SessionDep, paging: PagingDep, state: str = "overdue") -> list[dict[str, Any]]:
        require(user, Role.MANAGER)
        query = select(t.Deadline)
        if state == "overdue":
            query = query.where(t.Deadline.state == "open", col(t.Deadline.due_at) <= services.clock())
        elif state in ("open", "closed"):
            query = query.where(t.Deadline.state == state)
        else:
            raise ApiError(422, {"errors": [{"field": "state", "message": "must be overdue, open or closed"}]})
        page = _page(s, query, keysets.DEADLINES, paging)
        paging.link_next(page, state=state)
        return [{"id": d.id, "kind": d.kind, "subject_id": d.subject_id, "due_at": iso(d.due_at),
                 "escalation_level": d.escalation_level, "state": d.state} for d in page.rows]

    @app.get("/api/children/{child_id}/episodes")
    def child_episodes(child_id: str, user: CurrentUser, s: SessionDep, paging: PagingDep) -> list[dict[str, Any]]:
        require(user, Role.WORKER, Role.MANAGER)
        if user.role == Role.WORKER and not _allocated(s, user, child_id):
            raise not_found()
        if s.get(t.Child, child_id) is None:
            raise not_found()
        of_child = col(t.MissingEpisode.child_id) == child_id
        page = _page(s, select(t.MissingEpisode).where(of_child), keysets.EPISODES, paging, of_child)
        paging.link_next(page)
        result = []
        for episode in page.rows:
            deadlines = s.exec(select(t.Deadline).where(t.Deadline.subject_id == episode.episode_id)).all()
            result.append({
                "episode_id": episode.episode_id, "reported_at": iso(episode.reported_at),
                "last_seen_at": iso(episode.last_seen_at), "risk_grade": episode.risk_grade,
                "missing_from": episode.missing_from, "exploitation_flags": json.loads(episode.exploitation_flags),
                "found_at": iso(episode.found_at), "returned_to": episode.returned_to,
                "state": "found" if episode.found_at else ("missing" if episode.reported_at else "reported_found_only"),
                "return_interview_outcome": episode.return_interview_outcome,
                "deadlines": [{"id": d.id, "kind": d.kind, "due_at": iso(d.due_at), "state": d.state,
                               "escalation_level": d.escalation_level} for d in deadlines],
            })
        return result

    def _allocated(s: Session, user: t.User, child_id: str) -> bool:
        repo = Repository(s)
        facts = repo.facts_for_child(child_id, services.clock().date())
        return facts is not None and any(i.worker_email == user.email for i in facts.involvements)

    @app.get("/api/audit")
    def audit(subject: str, user: CurrentUser, s: SessionDep, paging: PagingDep) -> list[dict[str, Any]]:
        require(user, Role.MANAGER)
        of_subject = col(t.AuditEntry.subject_id) == subject
        page = _page(s, select(t.AuditEntry).where(of_subject), keysets.AUDIT, paging, of_subject)
        paging.link_next(page, subject=subject)
        return [{"id": a.id, "at": iso(a.at), "actor": a.actor, "action": a.action, "reason": a.reason}
                for a in page.rows]

    from pipeline.entrypoints import reports
    from pipeline.entrypoints.web import add_web_routes

    app.include_router(reports.router)

    add_web_routes(app, services, current_user)
    app.include_router(reviews_api.router(current_user, read_session, not_found, forbidden))
    app.include_router(callbacks.router(services))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        settings = services.settings
        if settings.kafka_bootstrap:
            from pipeline.adapters.metrics import refresh_consumer_lag

            try:
                refresh_consumer_lag(settings.kafka_bootstrap, settings.kafka_group, settings.kafka_topic_prefix)
            except Exception as error:  # noqa: BLE001 - metrics must not fail because the broker is away
                log.warning("consumer lag unavailable (%s)", type(error).__name__)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    return app
