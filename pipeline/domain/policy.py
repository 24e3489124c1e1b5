"""The partnership's rules as configured: calendar, timescales, ladders and council facts.

Built once from the merged settings mapping (config/defaults.yaml plus overrides) and handed to the
pure rules, so every timescale and ladder is a per-council setting rather than a constant in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.domain.calendar import Calendar, CalendarConfig, Duration, Timescale, parse_timescale
from pipeline.domain.model import LadderStep


@dataclass(frozen=True)
class LadderRule:
    """One rung, counted from the ladder's base (the due time, or the report for still-missing).

    ``before`` (a plain duration) places a rung ahead of the base instead: a reminder before the due time.
    """

    after: Timescale
    notify: tuple[str, ...]
    action: str
    before: timedelta | None = None


def _rung(step: Mapping[str, Any]) -> LadderRule:
    notify, action = tuple(step["notify"]), step.get("action", "escalation")
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

    @classmethod
    def from_mapping(cls, rules: Mapping[str, Any]) -> Policy:
        timescales: dict[str, Timescale] = {}
        ladders: dict[str, tuple[LadderRule, ...]] = {}
        for name, value in (rules.get("timescales") or {}).items():
            try:
                if isinstance(value, list):
                    ladders[name] = tuple(_rung(step) for step in value)
                else:
                    timescales[name] = parse_timescale(value)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"timescales.{name}: {error}") from error
        council = rules.get("council") or {}
        return cls(
            la_code=str(council.get("la_code", "")),
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
        steps = [
            LadderStep(base - rule.before if rule.before is not None
                       else self.calendar.resolve(rule.after, base, school_urn), rule.notify, rule.action)
            for rule in self.ladders.get(f"{name}_ladder", ())
        ]
        return tuple(sorted(steps, key=lambda step: step.at))

    def setting(self, *path: str, default: Any = None) -> Any:
        """A plain value from the merged config, e.g. ``setting("missing", "return_interview_assignee")``."""
        node: Any = self.raw
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return node
