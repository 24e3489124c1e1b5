"""``quick_init``: a frozen dataclass's faster ``__init__`` makes the object the generated one made (fields,
defaults, a fresh default from each factory, equality, hash, ``replace``), still frozen, and is refused where it
would not do the same."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import UTC, datetime

import pytest

from pipeline.domain import events, missing, model
from pipeline.domain.frozen import quick_init
from pipeline.service import children


@dataclass(frozen=True)
class Plain:
    name: str
    count: int = 0
    tags: frozenset[str] = field(default_factory=frozenset)
    notes: list[str] = field(default_factory=list)
    kind: str = "alert"


@quick_init
@dataclass(frozen=True)
class Quick:
    name: str
    count: int = 0
    tags: frozenset[str] = field(default_factory=frozenset)
    notes: list[str] = field(default_factory=list)
    kind: str = "alert"


def _fields(value: object) -> dict[str, object]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "kwargs"), [
    (("a",), {}),
    (("a", 3), {}),
    (("a", 3, frozenset({"x"}), ["n"], "review"), {}),
    ((), {"name": "a", "kind": "decision"}),
    (("a",), {"notes": ["kept"], "count": 2}),
])
def test_the_same_object_as_the_generated_init_makes(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    quick, plain = Quick(*args, **kwargs), Plain(*args, **kwargs)  # type: ignore[arg-type]
    assert _fields(quick) == _fields(plain)
    assert quick == Quick(*args, **kwargs) and repr(quick) == repr(plain).replace("Plain", "Quick")  # type: ignore[arg-type]
    assert dataclasses.replace(quick, kind="escalation") == Quick(**{**_fields(quick), "kind": "escalation"})  # type: ignore[arg-type]


def test_each_default_factory_gives_each_object_its_own_value_and_the_object_stays_frozen() -> None:
    first, second = Quick("a"), Quick("b")
    assert first.notes == [] and first.notes is not second.notes
    with pytest.raises(FrozenInstanceError):
        first.count = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Quick("a", unknown=1)  # type: ignore[call-arg]
    assert hash(Quick("a", 1, frozenset({"x"}), [], "k").name) == hash("a")


def test_what_it_would_not_do_as_the_generated_init_does_is_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Slotted:
        name: str

    @dataclass(frozen=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class KeywordOnly:
        name: str = field(kw_only=True)

    @dataclass
    class Unfrozen:
        name: str

    for cls in (Slotted, Checked, KeywordOnly, Unfrozen):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_the_domains_quick_value_objects_are_made_as_before() -> None:
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    contact = model.Contact("dsl@school.example")
    step = model.LadderStep(at, ("worker",), "reminder")
    made = [
        contact, model.Contact(None, "+447700900123"), step,
        model.PlannedNotification("k", "dsl", "100001", contact, "why", "URGENT", {"a": 1}),
        model.PlannedDeadline("return_interview", "k", at, (step,)),
        model.Plan(model.EventStatus.PROCESSED),
        model.MatchDecision(model.MatchOutcome.NO_MATCH, None, 0.0, {}, "no candidates"),
        missing.Episode("e-1", reported_at=at, flags=frozenset({"cse"})), missing.Episode("e-2"),
        children.ChildOfEvent(model.MatchDecision(model.MatchOutcome.NO_MATCH, None, 0.0, {}, "none"), None),
    ]
    for value in made:
        assert type(value).__init__.__code__.co_varnames[0] == "_quick_self"  # quick_init's, not the generated one
        assert dataclasses.replace(value) == value
        with pytest.raises(FrozenInstanceError):
            setattr(value, dataclasses.fields(value)[0].name, None)  # type: ignore[arg-type]
    assert missing.Episode("e-3").flags == frozenset()
    decision = model.MatchDecision(model.MatchOutcome.NO_MATCH, None, 0.0, {}, "none")
    assert children.ChildOfEvent(decision, None).candidates is not children.ChildOfEvent(decision, None).candidates
    assert events.SelfHarmAttendance.__init__.__code__.co_varnames[0] == "_quick_self"
