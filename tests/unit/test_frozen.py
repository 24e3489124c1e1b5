"""``quick_init``: a frozen dataclass's faster ``__init__`` makes the object the generated one made (fields in
order, defaults, a fresh default from each factory, equality, hash, ``replace``), still frozen, and is refused
where it would not do the same."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, InitVar, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.domain import model
from pipeline.domain.events import SelfHarmAttendance
from pipeline.domain.frozen import GENERATED_INITS, quick_init
from pipeline.domain.missing import Episode
from pipeline.service.children import ChildOfEvent


def _record(name: str) -> Any:
    """A frozen dataclass with a field of each kind (required, default, default factory)."""

    @dataclass(frozen=True)
    class Record:
        name: str
        count: int = 0
        tags: frozenset[str] = field(default_factory=frozenset)
        notes: tuple[str, ...] = ()
        kind: str = "alert"

    Record.__name__ = Record.__qualname__ = name
    return Record


Plain = _record("Plain")
Quick = quick_init(_record("Quick"))


@quick_init
@dataclass(frozen=True)
class WithList:
    items: list[str] = field(default_factory=list)


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    (("a",), {}),
    (("a", 3), {}),
    (("a", 3, frozenset({"x"}), ("n",), "review"), {}),
    ((), {"name": "a", "kind": "decision"}),
    (("a",), {"notes": ("kept",), "count": 2}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_same_object_as_the_generated_init_makes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    quick, plain = Quick(*args, **kwargs), Plain(*args, **kwargs)
    assert list(vars(quick).items()) == list(vars(plain).items())  # the same fields, in the same order
    assert quick == Quick(*args, **kwargs) and hash(quick) == hash(plain)
    assert repr(quick) == repr(plain).replace("Plain", "Quick")
    assert dataclasses.replace(quick, kind="escalation") == Quick(**{**vars(quick), "kind": "escalation"})
    assert str(inspect.signature(Quick)) == str(inspect.signature(Plain))  # annotations and defaults as shown


def test_each_default_factory_gives_each_object_its_own_value_and_the_object_stays_frozen() -> None:
    first, second = WithList(), WithList()
    assert first.items == [] and first.items is not second.items
    with pytest.raises(FrozenInstanceError):
        Quick("a").count = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Quick("a", unknown=1)  # type: ignore[call-arg]


def _refused() -> list[type]:
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

    @dataclass(frozen=True)
    class NotInInit:
        name: str = field(default="x", init=False)

    @dataclass(frozen=True)
    class WithInitVar:
        name: str
        extra: InitVar[int] = 0

    @dataclass(frozen=True)
    class HelperName:
        _quick_self: str

    class Described:
        def __set_name__(self, owner: type, name: str) -> None:
            self.name = name

        def __get__(self, instance: object, owner: type | None = None) -> int:
            return 7

        def __set__(self, instance: object, value: int) -> None:
            object.__setattr__(instance, "_x", value * 2)

    @dataclass(frozen=True)
    class WithDescriptor:
        x: int = Described()  # type: ignore[assignment]

    @dataclass
    class Unfrozen:
        name: str

    return [Slotted, Checked, KeywordOnly, NotInInit, WithInitVar, HelperName, WithDescriptor, Unfrozen]


@pytest.mark.parametrize("cls", _refused(), ids=lambda cls: cls.__name__)
def test_what_it_would_not_do_as_the_generated_init_does_is_refused(cls: type) -> None:
    with pytest.raises(TypeError):
        quick_init(cls)


def test_the_domains_quick_value_objects_are_made_as_the_generated_init_made_them() -> None:
    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    contact = model.Contact("dsl@school.example")
    step = model.LadderStep(at, ("worker",), "reminder")
    school = model.School("100001", "A school", "888", True, "STATE", contact, contact)
    identity = model.Identity("Ann", "Lee")
    decision = model.MatchDecision(model.MatchOutcome.NO_MATCH, None, 0.0, {}, "none")
    calls: list[tuple[type, tuple[Any, ...], dict[str, Any]]] = [
        (model.Contact, ("dsl@school.example",), {}), (model.Contact, (None, "+447700900123"), {}),
        (model.LadderStep, (at, ("worker",), "reminder"), {}),
        (model.PlannedNotification, ("k", "dsl", "100001", contact, "why", "URGENT", {"a": 1}), {"withheld": True}),
        (model.PlannedDeadline, ("return_interview", "k", at, (step,)), {}),
        (model.Plan, (model.EventStatus.PROCESSED,), {}),
        (model.MatchDecision, (model.MatchOutcome.NO_MATCH, None, 0.0, {}, "no candidates"), {}),
        (model.Enrolment, ("A123", school, identity), {}),
        (model.ChildFacts, ("c-1", identity), {"home_educated": True}),
        (Episode, ("e-1",), {"reported_at": at, "flags": frozenset({"cse"})}), (Episode, ("e-2",), {}),
        (ChildOfEvent, (decision, None), {}),
    ]
    for cls, args, kwargs in calls:
        assert cls in GENERATED_INITS, cls
        quick = cls(*args, **kwargs)
        generated = object.__new__(cls)
        GENERATED_INITS[cls](generated, *args, **kwargs)
        assert list(vars(quick).items()) == list(vars(generated).items()) and quick == generated
        assert dataclasses.replace(quick) == quick
        with pytest.raises(FrozenInstanceError):
            setattr(quick, dataclasses.fields(quick)[0].name, None)
    assert ChildOfEvent(decision, None).candidates is not ChildOfEvent(decision, None).candidates
    assert {cls for cls, _, _ in calls} | {SelfHarmAttendance} >= set(GENERATED_INITS) - {Quick, WithList}
