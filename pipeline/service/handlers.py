"""Event handlers: the one place both runtimes call to turn an accepted event into its effects.

A handler runs inside one unit of work (a ``pipeline.ports.StorePort``: the SQL ``Repository`` in the runtimes,
the in-memory ``MemoryStore`` in unit tests): it loads the state the rules need, calls the
pure rules, and writes what they decided (notifications, deadlines, audit entries, outbox rows) together
with the processed-event mark on the event row. Either all of that commits or none of it does, so a
redelivered event is recognised and has its effects once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline import codec
from pipeline.adapters.match_index import ReferenceIndex
from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher, Thresholds
from pipeline.domain.model import (
    DEPUTY_DSL_ROLE,
    DSL_ROLE,
    Candidate,
    Identity,
    MatchDecision,
    Plan,
    PlannedNotification,
)
from pipeline.domain.policy import Policy
from pipeline.domain.self_harm import PATHWAY as SELF_HARM
from pipeline.domain.self_harm import route_self_harm
from pipeline.ports import EventRecord, NotificationRecord, ReferenceReads, StorePort, UnitsOfWork
from pipeline.service.children import child_of_event, match_json
from pipeline.service.notify import (  # noqa: F401 - re-exported: the names other modules import from here
    DELIVERIES,
    ESCALATIONS,
    PATHWAY_NOTIFICATIONS,
    SYSTEM,
    notify,
    queue_delivery,
)

DEAD_LETTERS = "dead-letters"


# Match decisions a process keeps (``Context.match``) before it starts again with none: about 8.5 kB each (the
# breakdown of every candidate shown), so at most about 35 MB.
DECISIONS_KEPT = 4096


@dataclass
class _Decisions:
    """Match decisions made in this process by (identity, urgent), all with one matcher over one generation of the
    index: the matcher's decision is a function of the identity, the urgency, the candidates the index returns for
    the identity and the index's statistics, so the same identity asked again gets the same decision."""

    index: ReferenceIndex
    generation: int
    matcher: FellegiSunterMatcher
    made: dict[tuple[Identity, bool], MatchDecision] = field(default_factory=dict)


@dataclass
class Context:
    policy: Policy
    matcher: FellegiSunterMatcher
    index: ReferenceIndex = field(default_factory=ReferenceIndex)
    # Decisions made ahead for a batch (``match_ahead``), per thread: (the unit of work, results by who was matched).
    _ahead: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    _decisions: _Decisions | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, rules: dict[str, Any]) -> Context:
        return cls(Policy.from_mapping(rules), FellegiSunterMatcher(thresholds=Thresholds.from_mapping(
            rules.get("matching"))))

    def refresh(self, port: ReferenceReads) -> None:
        """The version check before matching: reference changes since the last one, and a newer stored model
        (``safeguard match train`` in another process) are picked up without a restart."""
        port.sync_match_index(self.index)
        parameters = port.newest_match_parameters(self.matcher.version)
        if parameters is not None:
            self.matcher = FellegiSunterMatcher(parameters, self.matcher.thresholds)

    def warm_up(self, store: UnitsOfWork) -> None:
        """Build the match index, load the newest stored model and the calendar's bank holidays at start-up,
        before the first event."""
        with store.unit_of_work() as port:
            self.refresh(port)
        self.policy.calendar.warm_up(datetime.now(UTC).date())

    def match(self, port: ReferenceReads, identity: Identity, *,
              urgent: bool) -> tuple[MatchDecision, list[Candidate]]:
        ahead = getattr(self._ahead, "results", None)
        if ahead and self._ahead.port is port and (made := ahead.get((identity, urgent))):
            return made.pop()
        self.refresh(port)
        return self._decide(identity, urgent)

    def _decide(self, identity: Identity, urgent: bool) -> tuple[MatchDecision, list[Candidate]]:
        """The matcher's decision over the index's candidates, made once per (identity, urgency) while the index
        (brought to the unit of work's reference version by ``refresh``) and the matcher stay as they are: a
        reference change, a reload or a newer model starts the decisions kept afresh."""
        index, matcher = self.index, self.matcher
        # The candidates are fetched every time (a few tens of microseconds): the decision, most of the cost, is not.
        # Their generation, read with them under the index's lock, chooses the decisions kept: a decision made
        # over an older (or newer) generation's candidates is never paired with these.
        generation, candidates = index.candidates_at(identity)
        kept = self._decisions
        if kept is None or kept.index is not index or kept.generation != generation or kept.matcher is not matcher:
            kept = self._decisions = _Decisions(index, generation, matcher)
        decision = kept.made.get((identity, urgent))
        if decision is None:
            decision = matcher.decide(identity, candidates, urgent=urgent, stats=index.stats)
            if index.generation == generation:  # not changed meanwhile (another thread applying reference changes)
                if len(kept.made) >= DECISIONS_KEPT:
                    kept.made.clear()
                kept.made[identity, urgent] = decision
        return decision, candidates

    def match_ahead(self, port: ReferenceReads, wanted: Sequence[tuple[Identity, bool]]
                    ) -> list[tuple[MatchDecision, list[Candidate]]]:
        """Match a batch's children (identity, urgent) before its events are handled, in this unit of work: each
        result is what ``match`` then returns, once, for the same identity and urgency in the same unit of work
        on the same thread (the same index and model, so the same decision), instead of matching again."""
        self.forget_ahead()
        made: dict[tuple[Identity, bool], tuple[MatchDecision, list[Candidate]]] = {}
        for identity, urgent in wanted:  # one child in two events of the batch: matched once
            if (identity, urgent) not in made:
                made[identity, urgent] = self.match(port, identity, urgent=urgent)
        results = [made[who] for who in wanted]
        kept: dict[tuple[Identity, bool], list[tuple[MatchDecision, list[Candidate]]]] = {}
        for who, result in zip(wanted, results, strict=True):
            kept.setdefault(who, []).append(result)
        self._ahead.port, self._ahead.results = port, kept
        return results

    def forget_ahead(self) -> None:
        """Drop this thread's decisions made ahead (the batch is over, or rolled back)."""
        self._ahead.port = self._ahead.results = None


def self_harm_child(_port: StorePort, record: dict[str, Any]) -> tuple[Identity, bool] | None:
    """Who a self-harm attendance is about and whether matching is urgent: what ``handle_self_harm`` matches
    (when no decision is stored on its event)."""
    attendance = SelfHarmAttendance.from_record(record)
    return attendance.child, attendance.exploitation_concern


def record_of(event: EventRecord) -> dict[str, Any]:
    """The event's record: the intake's decoded copy when this process accepted it, else decoded once here."""
    return codec.stored_record(event.event_type, event.record_json)


# ---- self-harm attendance ----------------------------------------------------------------------------

def handle_self_harm(port: StorePort, event: EventRecord, record: dict[str, Any], ctx: Context,
                     now: datetime) -> None:
    attendance = SelfHarmAttendance.from_record(record)
    day = ctx.policy.calendar.local(attendance.arrived_at).date()
    child = child_of_event(port, ctx, event, attendance.child,
                           urgent=attendance.exploitation_concern, on=day)
    if child.decided_now:  # a decision already stored on the event stands, as recorded
        _record_match(port, event, child.decision, child.breakdown, child.child_id, now)
    plan = route_self_harm(attendance, child.decision, child.facts, port.directory(), ctx.policy, now)
    apply_plan(port, event, plan, SELF_HARM, child.child_id, now)


def _record_match(port: StorePort, event: EventRecord, decision: MatchDecision, breakdown: dict[str, Any],
                  child_id: str | None, now: datetime, actor: str = SYSTEM) -> None:
    event.match_outcome = decision.outcome.value
    event.child_id = child_id
    event.match_json = match_json(decision, breakdown)
    version = breakdown.get("model_version", "")
    port.audit(now, actor, "matched", event.event_id,
               f"{decision.outcome.value}: {decision.reason} (probability {decision.score}, model {version})")


def apply_plan(port: StorePort, event: EventRecord, plan: Plan, pathway: str, child_id: str | None,
               now: datetime) -> dict[str, NotificationRecord]:
    """Persist a plan: notifications (with audit and outbox), then deadlines bound to them."""
    stored: dict[str, NotificationRecord] = {}
    for action, reason in plan.audit:
        port.audit(now, SYSTEM, action, event.event_id, reason)
    for item in plan.notifications:
        row = notify(port, event.event_id, item, pathway, now)
        if row is not None:
            stored[item.key] = row
    bind_deadlines(port, event, plan, stored, child_id, now)
    event.status = plan.status.value
    return stored


def store_notification(port: StorePort, event_id: str, item: PlannedNotification, pathway: str, now: datetime,
                       dedupe_key: str | None = None) -> NotificationRecord | None:
    """The one way to notify (``pipeline.service.notify.notify``), under the name callers already use."""
    return notify(port, event_id, item, pathway, now, dedupe_key=dedupe_key)


def bind_deadlines(port: StorePort, event: EventRecord, plan: Plan, stored: Mapping[str, NotificationRecord],
                   child_id: str | None, now: datetime) -> None:
    for planned in plan.deadlines:
        subject = stored.get(planned.subject_key)
        subject_id = subject.id if subject is not None else event.event_id
        deadline = port.add_deadline(planned, subject_id, now, event_id=event.event_id, child_id=child_id)
        assert deadline is not None
        if subject is not None:
            # A school alert's deputy shares the DSL's deadline: either acknowledging closes it.
            for row in stored.values():
                if row is subject or (subject.recipient_role == DSL_ROLE and row.recipient_role == DEPUTY_DSL_ROLE
                                      and row.school_urn == subject.school_urn):
                    row.deadline_id = deadline.id
