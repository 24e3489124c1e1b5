"""The partnership's rules as configured: calendar, timescales, ladders and council facts.

Built once from the merged settings mapping (config/defaults.yaml plus overrides) and handed to the
pure rules, so every timescale and ladder is a per-council setting rather than a constant in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.calendar import Calendar, CalendarConfig, Timescale, parse_timescale
from pipeline.domain.model import LadderStep


@dataclass(frozen=True)
class LadderRule:
    """One rung: `after` is counted from the deadline's due time."""

    after: Timescale
    notify: tuple[str, ...]
    action: str


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
                    ladders[name] = tuple(
                        LadderRule(parse_timescale(step["after"]), tuple(step["notify"]),
                                   step.get("action", "escalation"))
                        for step in value
                    )
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

    def ladder(self, name: str, due_at: datetime, school_urn: str | None = None) -> tuple[LadderStep, ...]:
        """The ladder's rungs as instants, in firing order."""
        steps = [
            LadderStep(self.calendar.resolve(rule.after, due_at, school_urn), rule.notify, rule.action)
            for rule in self.ladders.get(f"{name}_ladder", ())
        ]
        return tuple(sorted(steps, key=lambda step: step.at))
