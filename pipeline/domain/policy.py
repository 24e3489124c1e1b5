"""The partnership's rules as configured: calendar, timescales, ladders and council facts.

Built once from the merged settings mapping (config/defaults.yaml plus overrides) and handed to the
pure rules, so every timescale and ladder is a per-council setting rather than a constant in code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

from pipeline.domain.calendar import Calendar, CalendarConfig, Duration, Timescale, parse_timescale
from pipeline.domain.model import LADDER_KINDS, PERSON_ROLES, TEAMS_IN_CODE, LadderStep


@dataclass(frozen=True)
class LadderRule:
    """One rung, counted from the ladder's base (the due time, or the report for still-missing).

    ``before`` (a plain duration) places a rung ahead of the base instead: a reminder before the due time.
    """

    after: Timescale
    notify: tuple[str, ...]
    action: str
    before: timedelta | None = None


_STEP_KEYS = frozenset({"after", "before", "notify", "action"})
ROLE_LIKE = re.compile(r"[a-z_]+")
CHECK_TRIGGER_MEETING = "check_trigger_meeting"  # a ladder step that checks rather than notifies
# What a rung can do: send a notification of that kind (the sweep's, published on `escalations`), or check.
STEP_ACTIONS = (*LADDER_KINDS, CHECK_TRIGGER_MEETING)
# Ladders in working or school time kept per Policy by (ladder, base, school) before it starts again with none.
LADDERS_KEPT = 4096

# A ladder whose rungs are all plain durations (after or before the base), as offsets from the base in firing
# order: (offset, whether it is a `before` rung, notify, action). Its instants then need no calendar.
_Offsets = tuple[tuple[timedelta, bool, tuple[str, ...], str], ...]


def _offsets(rules: tuple[LadderRule, ...]) -> _Offsets | None:
    """``rules`` as offsets in firing order, or None if a rung needs the calendar (working or school time). The
    order is the one ``sorted`` gives the instants (stable, by offset): every instant is the base moved by its
    offset."""
    if not all(rule.before is not None or isinstance(rule.after, Duration) for rule in rules):
        return None
    offsets = [(-rule.before, True, rule.notify, rule.action) if rule.before is not None
               else (rule.after.delta, False, rule.notify, rule.action)  # type: ignore[union-attr]
               for rule in rules]
    return tuple(sorted(offsets, key=lambda offset: offset[0]))


@cache
def _default_rules() -> dict[str, Any]:
    """config/defaults.yaml as read, once: the rules every council starts from."""
    from pipeline.settings import default_rules  # the one place that reads config/

    return default_rules()


def _ladder(name: str, steps: list[Any], defaults: Mapping[str, Any]) -> tuple[LadderRule, ...]:
    """A ladder's steps; a bare timescale (``PT10S``, ``{working_hours: 2}``) is the step ``{after: X}`` with
    ``notify`` and ``action`` from the default ladder's step at the same index."""
    default_steps = (defaults.get("timescales") or {}).get(name) or []
    rules = []
    for index, step in enumerate(steps):
        if isinstance(step, Mapping) and set(step) & _STEP_KEYS:
            rules.append(_rung(step))
            continue
        if index >= len(default_steps) or not isinstance(default_steps[index], Mapping):
            raise ValueError(f"step {index + 1} is a bare timescale, which takes notify and action from the "
                             f"default ladder's step {index + 1}, but the default ladder has "
                             f"{len(default_steps)} step(s); write it as {{after: ..., notify: [...], action: ...}}")
        default = default_steps[index]
        rules.append(_rung({"after": step, "notify": default["notify"],
                            "action": default.get("action", "escalation")}))
    return tuple(rules)


def _rung(step: Mapping[str, Any]) -> LadderRule:
    notify, action = tuple(step["notify"]), step.get("action", "escalation")
    if action not in STEP_ACTIONS:
        raise ValueError(f"a step's action is one of {', '.join(STEP_ACTIONS)}, not {action!r}")
    for recipient in notify:
        # A person's role, or a team as the teams file names it (any text; the file is checked for a row of each).
        # A lower-case word that is not a role is a slip ("dls") that would send the step to the front door as
        # "no contact on file" instead of to the DSL.
        if not isinstance(recipient, str) or not recipient.strip() or \
                (ROLE_LIKE.fullmatch(recipient) and recipient not in PERSON_ROLES):
            raise ValueError(f"a step notifies a role ({', '.join(sorted(PERSON_ROLES))}) or a team as the teams "
                             f"file names it (e.g. SCIES), not {recipient!r}")
    if "before" in step:
        ahead = parse_timescale(step["before"])
        if not isinstance(ahead, Duration):
            raise ValueError("`before` takes a plain ISO-8601 duration")
        return LadderRule(Duration(timedelta(0)), notify, action, ahead.delta)
    return LadderRule(parse_timescale(step["after"]), notify, action)


@dataclass(frozen=True)
class Policy:
    la_code: str
    postcode_districts: frozenset[str]
    calendar: Calendar
    timescales: Mapping[str, Timescale]
    ladders: Mapping[str, tuple[LadderRule, ...]]
    raw: Mapping[str, Any]
    # Derived from the fields above (every event asks): the all-duration ladders as offsets, each ``setting`` path's
    # value, and the other ladders' instants by base. The configuration is never changed in place: a new one is a
    # new Policy.
    _offsets: dict[str, _Offsets | None] = field(default_factory=dict, init=False, repr=False, compare=False)
    _settings: dict[tuple[str, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _ladders: dict[tuple[str, datetime, Any, str | None], tuple[LadderStep, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, rules: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Policy:
        """``defaults`` (config/defaults.yaml unless given) fills in a ladder written as bare timescales."""
        timescales: dict[str, Timescale] = {}
        ladders: dict[str, tuple[LadderRule, ...]] = {}
        for name, value in (rules.get("timescales") or {}).items():
            try:
                if isinstance(value, list):
                    ladders[name] = _ladder(name, value, _default_rules() if defaults is None else defaults)
                else:
                    timescales[name] = parse_timescale(value)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"timescales.{name}: {error}") from error
        council = rules.get("council") or {}
        la_code = str(council.get("la_code", ""))
        if not re.fullmatch(r"\d{3}", la_code):
            raise ValueError(f"council.la_code: the council's three-digit code (such as 999), not {la_code!r}")
        return cls(
            la_code=la_code,
            postcode_districts=frozenset(str(d).upper() for d in council.get("postcode_districts", [])),
            calendar=Calendar(CalendarConfig.from_mapping(rules.get("calendar") or {})),
            timescales=timescales,
            ladders=ladders,
            raw=rules,
        )

    def due(self, name: str, start: datetime, school_urn: str | None = None) -> datetime:
        return self.calendar.resolve(self.timescales[name], start, school_urn)

    def ladder(self, name: str, base: datetime, school_urn: str | None = None) -> tuple[LadderStep, ...]:
        """The ladder's rungs as instants, in firing order, counted from ``base`` (usually the due time)."""
        key = f"{name}_ladder"
        try:
            offsets = self._offsets[key]
        except KeyError:
            offsets = self._offsets[key] = _offsets(self.ladders.get(key, ()))
        fixed = type(base.tzinfo) is timezone
        if offsets is not None and fixed:
            # A fixed offset (UTC, as every stored time is): instants in the offsets' order. As the calendar
            # resolves a duration, one after the base is in UTC; a `before` rung keeps the base's zone.
            return tuple(LadderStep(base + offset if before else (base + offset).astimezone(UTC), notify, action)
                         for offset, before, notify, action in offsets)
        # A ladder counted in working or school time is counted from a due time, which is the same for the day's
        # events (12:00 on the next school day, 17:00 on the third working day): its instants are kept by base
        # (with a fixed offset: its zone is in the key, as a `before` rung keeps it).
        kept = self._ladders.get((key, base, base.tzinfo, school_urn)) if fixed else None
        if kept is None:
            steps = [
                LadderStep(base - rule.before if rule.before is not None
                           else self.calendar.resolve(rule.after, base, school_urn), rule.notify, rule.action)
                for rule in self.ladders.get(key, ())
            ]
            kept = tuple(sorted(steps, key=lambda step: step.at))
            if fixed:
                if len(self._ladders) >= LADDERS_KEPT:
                    self._ladders.clear()
                self._ladders[key, base, base.tzinfo, school_urn] = kept
        return kept

    def routed_teams(self) -> frozenset[str]:
        """Every team the rules can route to under this configuration: those the code names, those the
        ladders notify, and the return interview's assignee team. Each needs a row in the teams file.
        (``LA_{code}`` rows depend on the involvements loaded, so they are not among them.)"""
        teams = set(TEAMS_IN_CODE)
        teams |= {role for ladder in self.ladders.values() for rule in ladder for role in rule.notify
                  if role not in PERSON_ROLES}
        assignee = str(self.setting("missing", "return_interview_assignee", default="RHI_PROVIDER"))
        if assignee != "worker":
            teams.add(assignee)
        return frozenset(teams)

    def setting(self, *path: str, default: Any = None) -> Any:
        """A plain value from the merged config, e.g. ``setting("missing", "return_interview_assignee")``."""
        try:
            node = self._settings[path]
        except KeyError:
            node = self._settings[path] = self._look_up(path)
        return default if node is _ABSENT else node

    def _look_up(self, path: tuple[str, ...]) -> Any:
        node: Any = self.raw
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return _ABSENT
            node = node[key]
        return node


_ABSENT = object()  # a ``setting`` path the configuration does not have
