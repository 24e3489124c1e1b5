"""Handlers for the missing pathway: fold each event into its episode, then make the store match the rules.

Every handler ends in ``reconcile``: notifications are stored once per stable key and deadlines once per
(kind, episode), both guarded by unique indexes, so late, repeated or reordered events never send twice
and never re-open what was closed. Per-child rules (one pending trigger meeting) are enforced by a
partial unique index and, on PostgreSQL, a row lock on the child taken inside the event's transaction.

Who owns a deadline follows from the episode's and the child's current facts: while the child is unknown
(found before reported, or a report waiting for the front door's review) the episode's deadlines are owned
as the rules say for no child (the front door, or the RHI provider); when the child becomes known,
``reconcile`` re-binds every open deadline of the episode to the child and tells its new owner; the sweep
resolves a step's recipients when it fires (``current_child_id``), never from who was known at creation.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pipeline.domain import missing as rules
from pipeline.domain.events import identity_from_record
from pipeline.domain.matching import group_people
from pipeline.domain.model import (
    FRONT_DOOR,
    ChildFacts,
    Contact,
    DeadlineKind,
    DeadlineState,
    EventStatus,
    Identity,
    MatchDecision,
    MatchOutcome,
    PlannedDeadline,
    PlannedNotification,
    iso_instant,
    ladder_json,
)
from pipeline.domain.policy import Policy
from pipeline.json_text import json_text
from pipeline.ports import SYSTEM, StorePort
from pipeline.ports.episodes import EpisodeRecord
from pipeline.ports.records import DeadlineRecord, EventRecord, NotificationRecord
from pipeline.service.children import PersonDecision, child_of_event, match_json
from pipeline.service.deadlines import close_deadline
from pipeline.service.errors import RejectedEvent
from pipeline.service.handlers import Context, record_of
from pipeline.service.notify import notify

PATHWAY = rules.PATHWAY


def _episode_of(row: EpisodeRecord) -> rules.Episode:
    return rules.Episode(
        episode_id=row.episode_id, child_id=row.child_id, reported_at=row.reported_at,
        last_seen_at=row.last_seen_at, missing_from=row.missing_from, risk_grade=row.risk_grade,
        risk_graded_at=row.risk_graded_at, flags=frozenset(json.loads(row.exploitation_flags)),
        found_at=row.found_at, returned_to=row.returned_to, return_interview_outcome=row.return_interview_outcome,
        graded_high_at=row.graded_high_at, flagged_at=row.flagged_at,
    )


def _write_back(row: EpisodeRecord, episode: rules.Episode, now: datetime) -> None:
    row.reported_at, row.last_seen_at = episode.reported_at, episode.last_seen_at
    row.missing_from = episode.missing_from
    row.risk_grade, row.risk_graded_at = episode.risk_grade, episode.risk_graded_at
    row.exploitation_flags = json_text(sorted(episode.flags))
    row.found_at, row.returned_to = episode.found_at, episode.returned_to
    row.return_interview_outcome = episode.return_interview_outcome
    row.graded_high_at, row.flagged_at = episode.graded_high_at, episode.flagged_at
    row.updated_at = now


def handle_episode_event(repo: StorePort, event: EventRecord, record: dict[str, Any], ctx: Context,
                         now: datetime) -> None:
    row = repo.episode_for_update(record["episode_id"])
    # Every deadline and notification of an episode follows from its being reported or found (the rules of
    # pipeline/domain/missing.py): one that was neither before this event has none stored yet.
    new_episode = row.reported_at is None and row.found_at is None
    review: MatchDecision | None = None
    if event.event_type == "missing-reported":
        row.force_code = record["force_code"]
        row.report_event_id = event.event_id
        if row.child_id is None:
            row.child_id, decision = _match(repo, event, record, ctx, now)
            review = decision if decision.outcome is MatchOutcome.REVIEW else None
    # Folded once the report's child is known: the episode then has its child (folding never changes it).
    episode = rules.fold(_episode_of(row), event.event_type, record)
    if event.event_type == "return-interview-recorded":
        row.return_interview_recorded_at = record["recorded_at"]
        repo.audit(now, record.get("by_role") or SYSTEM, "acknowledged", record["episode_id"],
                   f"return interview {record['outcome'].lower().replace('_', ' ')}")
    _write_back(row, episode, now)
    event.child_id = row.child_id
    event.status = EventStatus.PROCESSED
    if review is not None:
        _queue_review(repo, row, episode, event, review, record, ctx, now, new_episode=new_episode)
    reconcile(repo, row, episode, ctx, now, event.event_id, new_episode=new_episode)


def _reported(record: dict[str, Any]) -> tuple[Identity, bool]:
    """Who a missing report is about, and whether matching is urgent (a high-risk report)."""
    return identity_from_record(record["child"]), record["risk_grade"] == rules.HIGH


def missing_report_child(repo: StorePort, record: dict[str, Any]) -> tuple[Identity, bool] | None:
    """Who ``handle_episode_event`` will match for a missing report, if it will: its episode has no child yet
    (the episode read for update, as the handler reads it first)."""
    return _reported(record) if repo.episode_for_update(record["episode_id"]).child_id is None else None


def _match(repo: StorePort, event: EventRecord, record: dict[str, Any], ctx: Context,
           now: datetime) -> tuple[str | None, MatchDecision]:
    identity, urgent = _reported(record)
    child = child_of_event(repo, ctx, event, identity, urgent=urgent)
    decision, child_id, breakdown, candidates = child.decision, child.child_id, child.breakdown, child.candidates
    if not child.decided_now:
        return child_id, decision  # the decision already stored on the event stands, as recorded
    event.match_outcome = decision.outcome.value
    event.match_json = match_json(decision, breakdown)
    repo.audit(now, SYSTEM, "matched", event.event_id, f"{decision.outcome.value}: {decision.reason} "
               f"(model {breakdown.get('model_version', '')})")
    if group_people(candidates) and decision.outcome is not MatchOutcome.LINKED:
        repo.audit(now, SYSTEM, "matched", event.event_id, "not linked: the front door is told")
    return child_id, decision


def _queue_review(repo: StorePort, row: EpisodeRecord, episode: rules.Episode, event: EventRecord,
                  decision: MatchDecision, record: dict[str, Any], ctx: Context, now: datetime, *,
                  new_episode: bool) -> None:
    """An uncertain match waits for the front door, on a deadline of its own (see ``decide_review``)."""
    birth = identity_from_record(record["child"]).date_of_birth
    is_high = rules.ever_high_risk(episode, birth, ctx.policy)
    item, planned = rules.match_review(episode, is_high, decision.reason, repo.directory(), ctx.policy, now)
    notification = _notify(repo, event.event_id, item, now, key_is_new=new_episode)
    if notification is None:
        return  # this report was already queued for review
    deadline = repo.add_deadline(planned, notification.id, now, event_id=event.event_id, child_id=None)
    assert deadline is not None
    notification.deadline_id = deadline.id
    event.status = EventStatus.REVIEW


def decide_review(repo: StorePort, event: EventRecord, ctx: Context, actor: str, child_id: str | None, reason: str,
                  now: datetime) -> None:
    """The front door's decision on a missing report's uncertain match (its review deadline already closed by
    ``casework.decide_review``): link the episode to one of the candidates (everything the rules say for that
    child then happens, from now) or confirm it is none."""
    record = record_of(event)
    # Locked, as every event of the episode locks it: reconcile's view of its deadlines is then the whole truth.
    row = repo.episode_for_update(record["episode_id"])
    assert row.reported_at is not None, "a missing report waiting for review has its episode"
    child = child_of_event(repo, ctx, event, identity_from_record(record["child"]), urgent=False,
                           person=PersonDecision(child_id, reason))
    outcome = child.decision.outcome
    event.match_outcome = outcome.value
    event.child_id = row.child_id = child.child_id
    event.status = EventStatus.PROCESSED
    minutes = max(0, int((now - event.received_at).total_seconds() // 60)) if event.received_at else 0
    repo.audit(now, actor, "matched", event.event_id, f"{outcome.value}: review decided after {minutes} min: {reason}")
    episode = replace(_episode_of(row), child_id=child_id)
    reconcile(repo, row, episode, ctx, now, event.event_id)


def _reported_birth(repo: StorePort, row: EpisodeRecord) -> date | None:
    """The date of birth the police gave, for the 13-or-under rule when the child is not linked."""
    reports = repo.events_by_id([row.report_event_id], lock=False) if row.report_event_id else []
    return identity_from_record(record_of(reports[0])["child"]).date_of_birth if reports else None


def _facts(repo: StorePort, episode: rules.Episode, ctx: Context) -> ChildFacts | None:
    if episode.child_id is None or episode.reported_at is None:
        return None
    return repo.facts_for_child(episode.child_id, ctx.policy.calendar.local(episode.reported_at).date())


def reconcile(repo: StorePort, row: EpisodeRecord, episode: rules.Episode, ctx: Context, now: datetime,
              event_id: str, *, new_episode: bool = False) -> None:
    """Make notifications and deadlines match what the rules say this episode should have.

    The caller holds the episode's lock (``episode_for_update``), as every unit of work that changes its
    deadlines does: the episode's deadlines (its own and the trigger meeting raised on it) are read once and
    are the whole truth until the commit, so new ones are written with the unit of work's other rows rather
    than each with a guarded insert. ``new_episode``: nothing of the episode is stored yet (neither reported
    nor found before this event), so nothing is read and its notifications' keys are new."""
    policy = ctx.policy
    if episode.child_id:
        repo.lock_child(episode.child_id)
    facts = _facts(repo, episode, ctx)
    birth = facts.identity.date_of_birth if facts else _reported_birth(repo, row)
    is_high = rules.high_risk(episode, birth, policy)
    ever_high = rules.ever_high_risk(episode, birth, policy)
    directory = repo.directory()
    planned: list[PlannedNotification] = []
    if episode.reported:
        planned += rules.report_notifications(episode, facts, ever_high, directory, policy)
    if episode.found:
        planned += rules.found_notifications(episode, facts, directory, policy)
    for item in planned:
        _notify(repo, event_id, item, now, key_is_new=new_episode)

    wanted, close = rules.episode_deadlines(episode, is_high, policy)
    trigger_subject = _trigger_subject(episode)
    stored = [] if new_episode else repo.deadlines_of_subjects([episode.episode_id, trigger_subject])
    existing = {d.kind: d for d in stored if d.subject_id == episode.episode_id}
    own_meeting = next((d for d in stored if d.subject_id == trigger_subject
                        and d.kind == DeadlineKind.TRIGGER_MEETING), None)
    for kind in close:
        if kind in existing:
            close_deadline(repo, existing[kind], now, _moved_on(event_id))
    created_now: set[str] = set()  # deadlines made here: nobody was told of them yet
    for deadline in wanted:
        current = existing.get(deadline.kind)
        if current is None:
            created = repo.add_deadline(deadline, episode.episode_id, now, event_id=event_id,
                                        child_id=episode.child_id)
            assert created is not None
            if deadline.kind in close:
                # Already done (the return interview recorded before the found event arrived): kept as a
                # record, closed at once, nobody chased.
                close_deadline(repo, created, now, _moved_on(event_id))
            else:
                existing[deadline.kind] = created
                created_now.add(created.id)
        elif deadline.kind == DeadlineKind.STILL_MISSING and current.state == DeadlineState.OPEN:
            _replan(current, deadline, now)
    _carry_over_trigger_meeting(repo, episode, own_meeting, now)
    for current in [*existing.values(), *([own_meeting] if own_meeting is not None else [])]:
        if current.kind != DeadlineKind.TRIGGER_MEETING or current.state == DeadlineState.OPEN:
            _rebind(repo, current, episode.child_id, now)  # a closed one too: the record is about this child
        if current.state == DeadlineState.OPEN:
            _assign(repo, current, episode, facts, policy, event_id, now,
                    key_is_new=new_episode or current.id in created_now)
    raise_trigger_meeting_if_needed(repo, episode, ever_high, facts, ctx, now, event_id)


def _moved_on(event_id: str) -> str:
    return f"episode moved on (event {event_id})" if event_id else "episode moved on"


def _trigger_subject(episode: rules.Episode) -> str:
    """The subject of the trigger meeting raised on this episode (open or closed, the child's or still unbound)."""
    return rules.trigger_subject(episode.episode_id)


def _rebind(repo: StorePort, deadline: DeadlineRecord, child_id: str | None, now: datetime) -> None:
    """A deadline of the episode belongs to its current child (its owner follows from the child's facts)."""
    if child_id is None or deadline.child_id == child_id:
        return
    repo.rebind_deadline(deadline, child_id)
    repo.audit(now, SYSTEM, "matched", deadline.id, f"{deadline.kind}: child linked, owner now the child's")


def current_child_id(repo: StorePort, deadline: DeadlineRecord) -> str | None:
    """The child a deadline is about now: an episode's deadline follows the episode's child (which a review or
    a late report may have linked since the deadline was created), any other its own."""
    if deadline.kind in EPISODE_DEADLINES:
        episode = repo.episode(deadline.subject_id)
        if episode is not None and episode.child_id is not None:
            return episode.child_id
    return deadline.child_id


EPISODE_DEADLINES = frozenset({DeadlineKind.STILL_MISSING, DeadlineKind.EPISODE_LENGTH_CHECK,
                               DeadlineKind.RETURN_INTERVIEW, DeadlineKind.STRATEGY_DISCUSSION})
ASSIGNED_DEADLINES = frozenset({DeadlineKind.RETURN_INTERVIEW, DeadlineKind.STRATEGY_DISCUSSION,
                                DeadlineKind.TRIGGER_MEETING})


def _notify(repo: StorePort, event_id: str, item: PlannedNotification, now: datetime, *,
            key_is_new: bool = False) -> NotificationRecord | None:
    return notify(repo, event_id, item, PATHWAY, now, dedupe_key=item.key, key_is_new=key_is_new)


def _replan(row: DeadlineRecord, planned: PlannedDeadline, now: datetime) -> None:
    """A re-grade swaps the ladder; rungs already fired stay fired, rungs now passed fire on the next sweep."""
    steps = ladder_json(planned.steps)
    if row.steps_json == steps:
        return
    row.steps_json = steps
    row.due_at = planned.due_at
    row.next_step_at = planned.steps[row.escalation_level].at if row.escalation_level < len(planned.steps) else None


def _assign(repo: StorePort, deadline: DeadlineRecord, episode: rules.Episode, facts: ChildFacts | None,
            policy: Policy, event_id: str, now: datetime, reason: str | None = None, *,
            key_is_new: bool = False) -> None:
    """Tell the owner of an open return interview, strategy discussion or trigger meeting deadline. Keyed by
    owner: a deadline re-bound to a child whose owner differs tells the new owner, once. ``key_is_new``: the
    deadline was made in this unit of work (nobody can have been told of it)."""
    if deadline.kind not in ASSIGNED_DEADLINES:
        return
    role, ref, contact = assignee_for(repo, deadline.kind, facts, policy)
    if deadline.kind == DeadlineKind.TRIGGER_MEETING:
        reason = reason or repo.first_audit_reason(deadline.id, "created") or "trigger meeting needed"
        key = f"trigger:{deadline.id}:assigned:{ref}"
        content: dict[str, Any] = {"child_id": deadline.child_id, "episode_id": episode.episode_id,
                                   "due_at": iso_instant(deadline.due_at), "reason": reason}
    else:
        reason = f"{deadline.kind.replace('_', ' ')} due"
        key = f"missing:{episode.episode_id}:{deadline.kind}:assigned:{ref}"
        content = {"episode_id": episode.episode_id, "deadline": deadline.kind, "due_at": iso_instant(deadline.due_at)}
    item = PlannedNotification(key=key, recipient_role=role, recipient_ref=ref, contact=contact, reason=reason,
                               urgency="ROUTINE" if deadline.kind == DeadlineKind.RETURN_INTERVIEW else "URGENT",
                               content=content, kind="alert")
    row = _notify(repo, event_id, item, now, key_is_new=key_is_new)
    if row is not None and deadline.kind == DeadlineKind.STRATEGY_DISCUSSION:
        row.deadline_id = deadline.id  # the team acknowledging that the discussion is held closes it


def deadline_owner(repo: StorePort, deadline: DeadlineRecord, policy: Policy, now: datetime) -> tuple[str, str]:
    """(role, ref) of who owns a deadline now, from the current facts of the child it is about."""
    child_id = current_child_id(repo, deadline)
    facts = repo.facts_for_child(child_id, policy.calendar.local(now).date()) if child_id else None
    role, ref, _ = assignee_for(repo, deadline.kind, facts, policy)
    return role, ref


def assignee_for(repo: StorePort, kind: str, facts: ChildFacts | None, policy: Policy) -> tuple[str, str, Contact]:
    """(role, ref, contact) of who a deadline of this kind is assigned to: the return interview to the RHI
    provider (or the allocated worker where the council says so), the rest to the allocated team."""
    directory = repo.directory()
    rhi_assignee = str(policy.setting("missing", "return_interview_assignee", default="RHI_PROVIDER"))
    involvements = facts.involvements if facts else ()
    if kind == DeadlineKind.RETURN_INTERVIEW and rhi_assignee != "worker":
        return rhi_assignee, rhi_assignee, directory.teams.get(rhi_assignee) or Contact(None)
    worker = next((i for i in involvements if i.worker_email), None)
    if kind == DeadlineKind.RETURN_INTERVIEW and worker is not None:
        return "worker", str(worker.worker_email), Contact(worker.worker_email)
    team = next((i.team for i in involvements if i.team), None)
    if team is not None:
        return team, team, directory.teams.get(team) or Contact(None)
    return FRONT_DOOR, FRONT_DOOR, directory.teams.get(FRONT_DOOR) or Contact(None)


def raise_trigger_meeting_if_needed(repo: StorePort, episode: rules.Episode, is_high: bool,
                                    facts: ChildFacts | None, ctx: Context, now: datetime, event_id: str) -> None:
    """Raise a trigger meeting if the rules call for one and none is pending. For a child nobody has linked
    it is raised on the episode (child unknown), assigned to the front door, and carried over to the child
    when linked (``_carry_over_trigger_meeting``); the rolling-window rule needs a child."""
    child_id = facts.child_id if facts is not None else None
    if child_id is None and episode.child_id is not None:
        return  # a linked child with no reference record left: nothing to route by
    # The reasons of the episode itself come first (``rules.trigger_reason``): the child's other episodes are
    # read only when the rolling-window rule is the one left to ask.
    reason = rules.trigger_reason(episode, is_high, [], now, ctx.policy)
    if reason is None and child_id is not None:
        if repo.open_trigger_meeting(child_id) is not None:
            return  # one is pending for the child: whatever its other episodes say, add_deadline would refuse another
        rows = repo.episodes_of_child(child_id)
        reason = rules.trigger_reason(episode, is_high, [_episode_of(r) for r in rows], now, ctx.policy)
    if reason is None:
        return
    if child_id is not None:
        last_held = repo.last_trigger_meeting_held(child_id)
        if last_held is not None and episode.reported_at is not None and episode.reported_at <= last_held:
            return  # the meeting already held considered this episode
    kind = DeadlineKind.TRIGGER_MEETING
    due = ctx.policy.due(kind, now)
    planned = PlannedDeadline(kind, "child", due, ctx.policy.ladder(kind, due))
    created = repo.add_deadline(planned, _trigger_subject(episode), now, event_id=event_id,
                                child_id=child_id, once=True)
    if created is None:
        return  # one is already pending for this child (or this episode already raised one)
    repo.audit(now, SYSTEM, "created", created.id, f"trigger meeting needed: {reason}")
    _assign(repo, created, episode, facts, ctx.policy, event_id, now, f"trigger meeting needed: {reason}",
            key_is_new=True)


def _carry_over_trigger_meeting(repo: StorePort, episode: rules.Episode, mine: DeadlineRecord | None,
                                now: datetime) -> None:
    """A trigger meeting raised on the episode (``mine``) while its child was unknown becomes the child's when
    the child is linked, unless the child already has one pending (or held one since): then that one stands for
    both."""
    if episode.child_id is None:
        return
    if mine is None or mine.state != DeadlineState.OPEN or mine.child_id is not None:
        return
    pending = repo.open_trigger_meeting(episode.child_id)
    last_held = repo.last_trigger_meeting_held(episode.child_id)
    if pending is not None:
        close_deadline(repo, mine, now, f"carried over to the child's pending trigger meeting {pending.id}")
    elif last_held is not None and episode.reported_at is not None and episode.reported_at <= last_held:
        close_deadline(repo, mine, now, "a trigger meeting held for the child considered this episode")
    else:
        # Stored at once: the per-child guard now counts it as the child's one pending meeting.
        _rebind(repo, mine, episode.child_id, now)  # reconcile then tells the child's owner


def handle_trigger_meeting(repo: StorePort, event: EventRecord, record: dict[str, Any], ctx: Context,
                           now: datetime) -> None:
    child_id = record["child_id"]
    if not repo.is_known_child(child_id):
        raise RejectedEvent("trigger meeting for a child_id the pipeline never issued")
    repo.lock_child(child_id)
    repo.add_trigger_meeting(child_id, record["held_at"], record["outcome"], event.event_id)
    pending = repo.open_trigger_meeting(child_id)
    if pending is not None:
        close_deadline(repo, pending, now, f"trigger meeting held (event {event.event_id})")
        repo.audit(now, SYSTEM, "acknowledged", pending.id, "trigger meeting held")
    event.child_id = child_id
    event.status = EventStatus.PROCESSED


def check_trigger_meeting(repo: StorePort, deadline: DeadlineRecord, ctx: Context, now: datetime) -> None:
    """The sweep's check when an episode passes 24 hours since last seen (linked child or not)."""
    row = repo.episode(deadline.subject_id)
    if row is None:
        return
    episode = _episode_of(row)
    facts = _facts(repo, episode, ctx)
    birth = facts.identity.date_of_birth if facts else _reported_birth(repo, row)
    is_high = rules.ever_high_risk(episode, birth, ctx.policy)
    raise_trigger_meeting_if_needed(repo, episode, is_high, facts, ctx, now, deadline.event_id or "")
