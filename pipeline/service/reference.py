"""Loading reference data from the contract's CSVs (schools, pupils, ehe, involvements, teams).

The whole file is validated before anything is written: any bad row means a list of row numbers and
reasons (never the values), and nothing loaded. A file is the full current list for its kind, so rows
that have vanished since the last load are ended (``ended_at`` set), never deleted; loading the same file
twice changes nothing. Everything stored goes through the store port's ``ReferenceLoads`` part
(pipeline/ports/reference_data.py), so the SQL store and the in-memory fake load alike.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pipeline.domain.matching import normalise_name
from pipeline.ports.reference_data import ReferenceLoads
from pipeline.service.demo_data import COLUMNS

KINDS = tuple(COLUMNS)
MATCHED_KINDS = ("schools", "pupils", "ehe", "involvements")  # what the match index is built from
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")
_NHS = re.compile(r"^[0-9]{10}$")
_URN = re.compile(r"^[0-9]{6,7}$")
STATUSES = ("EARLY_HELP", "CHILD_IN_NEED", "CHILD_PROTECTION_PLAN", "CHILD_LOOKED_AFTER")


class ReferenceError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


@dataclass
class LoadReport:
    kind: str
    rows: int
    ended: int


class _Row:
    """Typed access to one CSV row that collects problems instead of raising."""

    def __init__(self, values: dict[str, str], problems: list[str]) -> None:
        self.values, self.problems = values, problems

    def text(self, name: str, required: bool = False, pattern: re.Pattern[str] | None = None,
             what: str = "") -> str | None:
        value = (self.values.get(name) or "").strip()
        if not value:
            if required:
                self.problems.append(f"{name}: required")
            return None
        if pattern is not None and not pattern.match(value):
            self.problems.append(f"{name}: not a valid {what or name}")
        return value

    def email(self, name: str) -> str | None:
        return self.text(name, pattern=_EMAIL, what="email address")

    def day(self, name: str, required: bool = False) -> date | None:
        value = self.text(name, required)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.problems.append(f"{name}: not an ISO date (YYYY-MM-DD)")
            return None

    def choice(self, name: str, options: tuple[str, ...], required: bool = True) -> str | None:
        value = self.text(name, required)
        if value is not None and value not in options:
            self.problems.append(f"{name}: must be one of {', '.join(options)}")
        return value


def _row_key(kind: str, values: dict[str, str]) -> str:
    """A digest over every column of the kind (an optional column the file leaves out counts as empty), so
    the same data keeps its key whether or not the file carries the optional column."""
    return hashlib.sha256("\x1f".join(f"{k}={values.get(k) or ''}" for k in sorted(COLUMNS[kind]))
                          .encode()).hexdigest()[:32]


def _school(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    return {"urn": row.text("urn", True, _URN, "URN"), "name": row.text("name", True),
            "la_code": row.text("la_code", True), "in_area": row.choice("in_area", ("true", "false")) == "true",
            "school_type": row.choice("school_type", ("STATE", "INDEPENDENT")),
            "dsl_email": row.email("dsl_email"), "dsl_phone": row.text("dsl_phone"),
            "deputy_email": row.email("deputy_email"), "deputy_phone": row.text("deputy_phone")}


def _identity(row: _Row) -> dict[str, Any]:
    family = row.text("family_name", True)
    return {"given_name": row.text("given_name", True), "family_name": family,
            "family_key": normalise_name(family), "date_of_birth": row.day("date_of_birth", True),
            "nhs_number": row.text("nhs_number", pattern=_NHS, what="NHS number (10 digits)")}


def _pupil(row: _Row, port: ReferenceLoads) -> dict[str, Any]:
    urn = row.text("school_urn", True)
    if urn and not port.school_ever_loaded(urn):
        row.problems.append("school_urn: no such school loaded")
    return {"upn": row.text("upn", True, _UPN, "UPN"), **_identity(row),
            "sex": row.choice("sex", ("M", "F", "U"), required=False), "postcode": row.text("postcode"),
            "school_urn": urn, "on_roll_from": row.day("on_roll_from"), "on_roll_to": row.day("on_roll_to")}


def _ehe(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    return {"row_key": _row_key("ehe", row.values), **_identity(row), "postcode": row.text("postcode")}


def _involvement(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    placing = row.text("placing_la")
    return {"row_key": _row_key("involvements", row.values), **_identity(row),
            "upn": row.text("upn", pattern=_UPN, what="UPN"),
            "status": row.choice("status", STATUSES), "worker_email": row.email("worker_email"),
            "team": row.text("team"), "manager_email": row.email("manager_email"),
            "placing_la": placing, "iro_email": row.email("iro_email")}


def _team(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    # A team is named as the case-management system exports it (any non-blank text, e.g. "Crewe CIN/CP 2"),
    # so an involvement's team, its contact row and a team user's scope are the same name.
    return {"team": row.text("team", True),
            "email": row.email("email"), "phone": row.text("phone")}


@dataclass(frozen=True)
class _Kind:
    key: str
    parse: Callable[[_Row, ReferenceLoads], dict[str, Any]]


_KINDS: dict[str, _Kind] = {
    "schools": _Kind("urn", _school),
    "pupils": _Kind("upn", _pupil),
    "ehe": _Kind("row_key", _ehe),
    "involvements": _Kind("row_key", _involvement),
    "teams": _Kind("team", _team),
}


def parse_csv(kind: str, text: str, port: ReferenceLoads) -> list[dict[str, Any]]:
    """Validate the whole file (a pupil's school asked of ``port``); raise ReferenceError listing every bad row."""
    spec = _KINDS[kind]
    reader = csv.DictReader(io.StringIO(text))
    expected = list(COLUMNS[kind])
    header = reader.fieldnames or []
    optional_tail = ["iro_email"] if kind == "involvements" else []
    if header != expected and header != [c for c in expected if c not in optional_tail]:
        raise ReferenceError([f"row 1: header must be {','.join(expected)}"])
    problems: list[str] = []
    parsed: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for number, values in enumerate(reader, start=2):
        if None in values or any(v is None for v in values.values()):
            problems.append(f"row {number}: wrong number of columns")
            continue
        row_problems: list[str] = []
        item = spec.parse(_Row(values, row_problems), port)
        if not row_problems and item[spec.key] in seen:
            row_problems.append(f"{spec.key}: appears twice in the file")
        seen.add(item[spec.key])
        problems.extend(f"row {number}: {p}" for p in row_problems)
        parsed.append(item)
    if problems:
        raise ReferenceError(problems)
    return parsed


def load(port: ReferenceLoads, kind: str, text: str, now: datetime,
         required_teams: Collection[str] = ()) -> LoadReport:
    """Replace the current list for ``kind`` with the file's rows, in the caller's unit of work. A teams file
    without a row for each of ``required_teams`` (the teams the rules route to) is refused, naming them."""
    if kind not in _KINDS:
        raise ValueError(f"unknown kind; use one of {', '.join(KINDS)}")
    spec = _KINDS[kind]
    # Loads take turns from here to their commit, so the change log's sequence numbers are in commit order and
    # its newest is a version a running process can trust (pipeline/adapters/reference_cache.py).
    port.take_turn_to_load()
    items = parse_csv(kind, text, port)
    if kind == "teams":
        missing = sorted(set(required_teams) - {item["team"] for item in items})
        if missing:
            raise ReferenceError([f"teams the rules route to have no row: {', '.join(missing)}"])
    keys = {item[spec.key] for item in items}
    changed = port.upsert_current_rows(kind, items)
    ended = port.end_vanished_rows(kind, keys, now)
    changed.extend(ended)
    if changed:
        # In this transaction: every running process's match index applies these (keys only) and its reference
        # snapshot (schools, teams, people's teams) is read again before its next batch.
        port.log_reference_changes(kind, changed, now)
    return LoadReport(kind, len(items), len(ended))
