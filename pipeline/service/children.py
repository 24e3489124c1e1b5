"""Which child an event is about: the one function both pathways and the front door's decisions call.

An event's child is decided once and stored on the event (``match_outcome``, ``child_id``, ``match_json``).
``child_of_event`` returns that stored decision when there is one (a release of a withheld attendance routes
to the child the match decided), a person's decision when the front door has just made one (the review), and
otherwise decides now with the matcher. With a day it also returns the child's reference facts on that day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from pipeline.domain.frozen import quick_init
from pipeline.domain.matching import group_people
from pipeline.domain.model import Candidate, ChildFacts, Identity, MatchDecision, MatchOutcome
from pipeline.json_text import json_text
from pipeline.ports import StorePort


class Matching(Protocol):
    """What resolving a child needs of the handler context: the matcher over the in-memory index."""

    def match(self, port: StorePort, identity: Identity, *, urgent: bool) -> tuple[MatchDecision, list[Candidate]]:
        ...


class EventMatch(Protocol):
    """The stored match decision of an event (see pipeline/ports/records.py)."""

    @property
    def match_outcome(self) -> str | None: ...

    @property
    def child_id(self) -> str | None: ...

    @property
    def match_json(self) -> str | None: ...


@dataclass(frozen=True)
class PersonDecision:
    """The front door's review decision: this child (one of the review's candidates), or none of them."""

    child_id: str | None
    reason: str


@quick_init
@dataclass(frozen=True)
class ChildOfEvent:
    decision: MatchDecision
    child_id: str | None
    facts: ChildFacts | None = None
    # Only for a decision made now by the matcher: the candidates' breakdown, to be stored with the decision.
    breakdown: dict[str, Any] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    decided_now: bool = False


class MatchingAhead(Matching, Protocol):
    """The handler context's matching of a batch's children before its events are handled."""

    def match_ahead(self, port: StorePort, wanted: Sequence[tuple[Identity, bool]]
                    ) -> list[tuple[MatchDecision, list[Candidate]]]:
        ...


def resolve_children_ahead(port: StorePort, ctx: MatchingAhead, wanted: Sequence[tuple[Identity, bool]]
                           ) -> list[str | None]:
    """A batch's children (identity, urgent) resolved before its events are handled, in the batch's unit of work:
    matched once (``child_of_event`` then takes each decision as made), the linked people's child ids issued
    together, and their pupil records read together, where each event asked for its own one by one. Returns the
    child id each of ``wanted`` is linked to (None: not linked)."""
    results = ctx.match_ahead(port, wanted)
    linked = [(decision.person_key, candidates) for decision, candidates in results
              if decision.outcome is MatchOutcome.LINKED and decision.person_key]
    if not linked:
        return [None] * len(wanted)
    ids = port.child_ids(sorted({person_key for person_key, _ in linked}))  # one order for every worker's inserts
    port.read_pupils_ahead(sorted({member.upn for person_key, candidates in linked
                                   for member in group_people(candidates).get(person_key, []) if member.upn}))
    return [ids[decision.person_key] if decision.outcome is MatchOutcome.LINKED and decision.person_key else None
            for decision, _ in results]


def child_of_event(port: StorePort, ctx: Matching, event: EventMatch, identity: Identity, *, urgent: bool,
                   on: date | None = None, person: PersonDecision | None = None) -> ChildOfEvent:
    """The child ``event`` (whose child is described by ``identity``) is about, and with ``on`` that child's
    facts on that day: a person's decision if given, else the decision stored on the event, else the
    matcher's now."""
    if person is not None:
        return _decided_by_person(port, ctx, identity, person, urgent=urgent, on=on)
    if event.match_outcome is not None:
        return _as_stored(port, event, MatchOutcome(event.match_outcome), on)
    decision, candidates = ctx.match(port, identity, urgent=urgent)
    child_id = facts = None
    if decision.outcome is MatchOutcome.LINKED and decision.person_key:
        child_id = port.child_id(decision.person_key)
        if on is not None:
            facts = port.child_facts(child_id, group_people(candidates)[decision.person_key], identity, on)
    return ChildOfEvent(decision, child_id, facts, match_breakdown(port, decision, child_id), candidates,
                        decided_now=True)


def _as_stored(port: StorePort, event: EventMatch, outcome: MatchOutcome, on: date | None) -> ChildOfEvent:
    """The decision stored on the event. A linked child with no reference record left on ``on`` is routed as no
    match, yet the event stays about that child."""
    stored = json.loads(event.match_json or "{}")
    facts = port.facts_for_child(event.child_id, on) if event.child_id and on is not None else None
    if outcome is MatchOutcome.LINKED and on is not None and facts is None:
        outcome = MatchOutcome.NO_MATCH
    decision = MatchDecision(outcome, None, float(stored.get("score") or 0.0), {},
                             str(stored.get("reason") or "as decided before"))
    return ChildOfEvent(decision, event.child_id, facts)


def _decided_by_person(port: StorePort, ctx: Matching, identity: Identity, person: PersonDecision, *,
                       urgent: bool, on: date | None) -> ChildOfEvent:
    if person.child_id is None:
        return ChildOfEvent(MatchDecision(MatchOutcome.NO_MATCH, None, 0.0, {},
                                          f"no match, decided by a person: {person.reason}"), None)
    person_key = port.person_key_of(person.child_id)
    assert person_key is not None, "a review's candidates are children the pipeline issued"
    decision = MatchDecision(MatchOutcome.LINKED, person_key, 0.0, {}, f"confirmed by a person: {person.reason}")
    facts = None
    if on is not None:
        # The records the matcher groups under the chosen person now, else the person key's own records.
        _, candidates = ctx.match(port, identity, urgent=urgent)
        members = group_people(candidates).get(person_key, [])
        facts = port.child_facts(person.child_id, members, identity, on) if members else \
            port.facts_for_child(person.child_id, on)
    return ChildOfEvent(decision, person.child_id, facts)


def match_json(decision: MatchDecision, breakdown: dict[str, Any]) -> str:
    """The text stored as an event's ``match_json``: the decision's score and reason with its breakdown."""
    return json_text({"score": decision.score, "reason": decision.reason, **breakdown})


def match_breakdown(port: StorePort, decision: MatchDecision, linked_child_id: str | None = None) -> dict[str, Any]:
    """The decision's breakdown as stored and shown: each candidate person under an opaque child id (every
    candidate of a review, the linked child of a link; the others stay anonymous), never a UPN or NHS number.
    ``linked_child_id``: the linked person's child id when the caller has it already (one lookup fewer)."""
    breakdown = dict(decision.breakdown)
    shown = []
    ids: list[str] = []
    for key, candidate in zip(decision.candidate_keys, breakdown.get("candidates", []), strict=False):
        named = decision.outcome is MatchOutcome.REVIEW or key == decision.person_key
        if not named:
            child_id = None
        elif key == decision.person_key and linked_child_id is not None:
            child_id = linked_child_id
        else:
            child_id = port.child_id(key)
        shown.append({"child_id": child_id, **candidate})
        if child_id is not None:
            ids.append(child_id)
    breakdown["candidates"] = shown
    if decision.outcome is MatchOutcome.REVIEW:
        breakdown["candidate_child_ids"] = ids
    return breakdown
