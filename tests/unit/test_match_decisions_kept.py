"""The match decisions a process keeps (``Context.match``): the same identity and urgency asked again get the
decision made before, and never one made over reference data or a model that has changed since."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline import codec
from pipeline.adapters.match_index import SOURCE
from pipeline.adapters.memory_store import MemoryStore
from pipeline.domain.events import identity_from_record
from pipeline.domain.fellegi_sunter import FellegiSunterMatcher
from pipeline.domain.matching import group_people
from pipeline.domain.model import MatchOutcome
from pipeline.service.handlers import Context
from tests.support.world import AMELIA, PUPILS, UNKNOWN, attendance


def _identity(child: dict[str, Any]) -> Any:
    return identity_from_record(codec.from_json("self-harm-attendance", attendance(child))["child"])


def _counting(ctx: Context) -> list[str]:
    decided: list[str] = []
    real = ctx.matcher.decide

    def decide(identity: Any, *args: Any, **kwargs: Any) -> Any:
        decided.append(identity.given_name)
        return real(identity, *args, **kwargs)

    ctx.matcher.decide = decide  # type: ignore[method-assign]
    return decided


@pytest.fixture
def amelia() -> Any:
    return _identity(AMELIA)


def test_the_same_identity_and_urgency_is_decided_once(store: MemoryStore, ctx: Context, amelia: Any) -> None:
    decided = _counting(ctx)
    with store.unit_of_work() as port:
        first, candidates = ctx.match(port, amelia, urgent=False)
        again, candidates_again = ctx.match(port, amelia, urgent=False)
    with store.unit_of_work() as port:
        later, _ = ctx.match(port, amelia, urgent=False)
        urgent, _ = ctx.match(port, amelia, urgent=True)
        ctx.match(port, _identity(UNKNOWN), urgent=False)
    assert decided == ["Amelia", "Amelia", "Zebedee"]  # once per (identity, urgency)
    assert first.outcome is MatchOutcome.LINKED and again == first == later
    assert [c.record_key for c in candidates_again] == [c.record_key for c in candidates]
    assert urgent.urgent_review and not first.urgent_review


def test_a_reference_reload_or_a_new_model_decides_again(store: MemoryStore, ctx: Context, amelia: Any) -> None:
    with store.unit_of_work() as port:
        linked, _ = ctx.match(port, amelia, urgent=False)
    assert linked.outcome is MatchOutcome.LINKED
    # A second pupil record with Amelia's identity and NHS number arrives: the next unit of work's index has it.
    store.load_reference("pupils", PUPILS + "Z999100100099,9990000018,Amelia,Hartley,2013-05-14,F,NS1 2AB,100002,"
                                            "2020-09-01,\n")
    decided = _counting(ctx)
    with store.unit_of_work() as port:
        after_reload, candidates = ctx.match(port, amelia, urgent=False)
    assert decided == ["Amelia"]
    assert any(c.upn == "Z999100100099" for c in candidates)
    assert after_reload != linked  # the weights moved with the roll (its population)
    ctx.matcher = FellegiSunterMatcher(ctx.matcher.parameters, ctx.matcher.thresholds)  # a newer model, say
    decided = _counting(ctx)
    with store.unit_of_work() as port:
        ctx.match(port, amelia, urgent=False)
    assert decided == ["Amelia"]


class _ChangeOnNextLock:
    """The index's lock, which runs ``change`` (under the real lock) the next time a reader takes it once armed:
    another thread changing the index between a reader's steps, made deterministic."""

    def __init__(self, lock: Any) -> None:
        self.lock, self.change = lock, None

    def __enter__(self) -> Any:
        entered = self.lock.__enter__()
        change, self.change = self.change, None
        if change is not None:
            change()
        return entered

    def __exit__(self, *exc: Any) -> Any:
        return self.lock.__exit__(*exc)


def test_a_kept_decision_is_never_paired_with_candidates_of_a_newer_index(store: MemoryStore, ctx: Context,
                                                                           amelia: Any) -> None:
    with store.unit_of_work() as port:
        linked, candidates = ctx.match(port, amelia, urgent=False)
    assert linked.outcome is MatchOutcome.LINKED and linked.person_key in group_people(candidates)
    index = ctx.index
    linked_records = group_people(candidates)[linked.person_key]
    table = {source: table for table, source in SOURCE.items()}
    gate = index._lock = _ChangeOnNextLock(index._lock)  # type: ignore[assignment]
    real_refresh = ctx.refresh

    def refresh_then_change(port: Any) -> None:
        real_refresh(port)  # the unit of work's version check, then another thread drops the linked records
        gate.change = lambda: [index.remove(table[c.source], c.record_key) for c in linked_records]

    ctx.refresh = refresh_then_change  # type: ignore[method-assign]
    decided = _counting(ctx)
    with store.unit_of_work() as port:
        decision, candidates = ctx.match(port, amelia, urgent=False)
    assert gate.change is None  # the change happened, between the version check and the candidates
    assert not {c.record_key for c in candidates} & {c.record_key for c in linked_records}
    assert decided == ["Amelia"]  # decided again, over the candidates returned
    assert decision.person_key is None or decision.person_key in group_people(candidates)
