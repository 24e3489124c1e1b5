"""Loading reference data from the contract's CSVs (schools, pupils, ehe, involvements, teams).

The whole file is validated before anything is written: any bad row means a list of row numbers and
reasons (never the values), and nothing loaded. A file is the full current list for its kind, so rows
that have vanished since the last load are ended (``ended_at`` set), never deleted; loading the same file
twice changes nothing. Everything stored goes through the store port's ``ReferenceLoads`` part
(pipeline/ports/reference_data.py), so the SQL store and the in-memory fake load alike.

A file that would end much of what is current (a partial or empty export: more than ``ENDING_GUARD_SHARE`` of
the kind's current rows, and more than ``ENDING_GUARD_ROWS`` of them) is refused unless the caller allows it
(``safeguard load --allow-ending``): ending pupils or involvements silently takes children off their school's and
their worker's routes. A schools file that ends a school with pupils still on its roll is loaded (the file is the
full current list) with a warning naming the school, for the same reason.

A pupils row is one enrolment (``pupil_row_key``): a child on two schools' rolls (dual registration) or who moved
school (the old school's row ended by ``on_roll_to``) has a row at each, and every school the child is on the roll
of is routed to. The rows of one UPN must agree on the date of birth and on the NHS number where they give one,
and two UPNs with one NHS number must be one child's (one date of birth and given name).

Values are read as the contract writes them, with what spreadsheets and case-management exports commonly do to
them forgiven: spaces in an NHS number, a UPN in lower case, ``TRUE``/``Yes`` for ``true``, ``Male`` for ``M``.
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
ENDING_GUARD_SHARE = 0.25
ENDING_GUARD_ROWS = 50
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")
_SEXES = {"m": "M", "male": "M", "f": "F", "female": "F", "u": "U", "unknown": "U"}
_DAY_FIRST = re.compile(r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$")


class ReferenceError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


@dataclass
class LoadReport:
    kind: str
    rows: int
    ended: int
    warnings: tuple[str, ...] = ()  # loaded, but worth a look (a school ended with pupils on its roll)


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
            pass
        if value.endswith(("T00:00:00", " 00:00:00")):  # a date exported as midnight on that day
            try:
                return date.fromisoformat(value[:-9])
            except ValueError:
                pass
        hint = " (this looks like a day/month/year date: write it as YYYY-MM-DD)" if _DAY_FIRST.match(value) else ""
        self.problems.append(f"{name}: not an ISO date (YYYY-MM-DD){hint}")
        return None

    def choice(self, name: str, options: tuple[str, ...], required: bool = True) -> str | None:
        value = self.text(name, required)
        if value is not None and value not in options:
            self.problems.append(f"{name}: must be one of {', '.join(options)}")
        return value

    def flag(self, name: str) -> bool | None:
        """``true`` or ``false`` (also TRUE, Yes, 1, No, 0, ...)."""
        value = self.text(name, True)
        if value is None:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() not in _FALSE:
            self.problems.append(f"{name}: must be one of true, false")
        return False

    def sex(self, name: str) -> str | None:
        """``M``, ``F`` or ``U`` (also m, Male, Female, Unknown), or absent."""
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in _SEXES:
            self.problems.append(f"{name}: must be one of M, F, U")
            return value
        return _SEXES[value.lower()]

    def upn(self, name: str, required: bool = False) -> str | None:
        value = self.text(name, required)
        if value is not None:
            value = value.upper()
            if not _UPN.match(value):
                self.problems.append(f"{name}: not a valid UPN")
        return value

    def nhs_number(self, name: str) -> str | None:
        """Ten digits; spaces and hyphens between them (as NHS numbers are often written) are dropped."""
        value = self.text(name)
        if value is not None:
            value = re.sub(r"[\s-]", "", value)
            if not _NHS.match(value):
                self.problems.append(f"{name}: not a valid NHS number (10 digits)")
        return value


def _row_key(kind: str, values: dict[str, str]) -> str:
    """A digest over every column of the kind (an optional column the file leaves out counts as empty), so
    the same data keeps its key whether or not the file carries the optional column."""
    return hashlib.sha256("\x1f".join(f"{k}={values.get(k) or ''}" for k in sorted(COLUMNS[kind]))
                          .encode()).hexdigest()[:32]


def _school(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    return {"urn": row.text("urn", True, _URN, "URN"), "name": row.text("name", True),
            "la_code": row.text("la_code", True), "in_area": row.flag("in_area"),
            "school_type": row.choice("school_type", ("STATE", "INDEPENDENT")),
            "dsl_email": row.email("dsl_email"), "dsl_phone": row.text("dsl_phone"),
            "deputy_email": row.email("deputy_email"), "deputy_phone": row.text("deputy_phone")}


def _identity(row: _Row) -> dict[str, Any]:
    family = row.text("family_name", True)
    return {"given_name": row.text("given_name", True), "family_name": family,
            "family_key": normalise_name(family), "date_of_birth": row.day("date_of_birth", True),
            "nhs_number": row.nhs_number("nhs_number")}


def pupil_row_key(upn: str, school_urn: str, on_roll_from: date | None) -> str:
    """A pupils row's key: one enrolment, the UPN at a school from the day it joined its roll. A child on two
    schools' rolls (dual registration) or who moved school (the old school's row ended by ``on_roll_to``) has a row
    at each; a correction of the pupil's details keeps the key, so it updates the row in place. Migration 0015 makes
    the same text in SQL."""
    return f"{upn}|{school_urn}|{on_roll_from.isoformat() if on_roll_from else ''}"


def _pupil(row: _Row, port: ReferenceLoads) -> dict[str, Any]:
    urn = row.text("school_urn", True)
    if urn and not port.school_ever_loaded(urn):
        row.problems.append("school_urn: no such school loaded")
    upn, on_roll_from = row.upn("upn", True), row.day("on_roll_from")
    return {"row_key": pupil_row_key(upn or "", urn or "", on_roll_from), "upn": upn, **_identity(row),
            "sex": row.sex("sex"), "postcode": row.text("postcode"),
            "school_urn": urn, "on_roll_from": on_roll_from, "on_roll_to": row.day("on_roll_to")}


def _ehe(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    return {"row_key": _row_key("ehe", row.values), **_identity(row), "postcode": row.text("postcode")}


def _involvement(row: _Row, _: ReferenceLoads) -> dict[str, Any]:
    placing = row.text("placing_la")
    return {"row_key": _row_key("involvements", row.values), **_identity(row),
            "upn": row.upn("upn"),
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
    twice: str  # what a second row with the same key repeats, as a row's problem says it

_KINDS: dict[str, _Kind] = {
    "schools": _Kind("urn", _school, "urn: appears twice in the file"),
    "pupils": _Kind("row_key", _pupil, "upn, school_urn and on_roll_from: the same enrolment appears twice in the "
                    "file"),
    "ehe": _Kind("row_key", _ehe, "the same row appears twice in the file"),
    "involvements": _Kind("row_key", _involvement, "the same row appears twice in the file"),
    "teams": _Kind("team", _team, "team: appears twice in the file"),
}


def _header_problem(header: list[str], expected: list[str], optional_tail: list[str]) -> str:
    """What is wrong with a header that is not the contract's, in words (column names only)."""
    if not header:
        return "row 1: the file is empty: it needs the header " + ",".join(expected)
    wanted = set(expected)
    missing = [c for c in expected if c not in header and c not in optional_tail]
    unexpected = [c for c in header if c not in wanted]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if unexpected:
        parts.append(f"not in the contract: {', '.join(unexpected)}")
    if not parts:
        parts.append("the columns are in another order")
    return f"row 1: header must be {','.join(expected)} ({'; '.join(parts)})"


def _one_child_per_number(item: dict[str, Any], number: int, seen: dict[str, tuple[Any, int]]) -> list[str]:
    """The problems of pupils row ``number`` (``item``) against the rows before it (``seen``, kept here). A child
    on two schools' rolls has a row at each, with one date of birth and (where given) one NHS number; one child may
    also have two UPNs (one issued again), with one date of birth and given name. Two children given one UPN, or
    one NHS number, by mistake would otherwise be taken for one child: one's notifications sent to the other's
    school under the other's name, and the other's worker told of this one."""
    upn, nhs = item["upn"], item["nhs_number"]
    first, on_row = seen.setdefault(f"upn:{upn}", (item, number))
    problems = []
    if first["date_of_birth"] != item["date_of_birth"]:
        problems.append(f"upn: the same UPN as row {on_row} with another date of birth (a UPN is one child's)")
    if nhs:
        upn_nhs, nhs_row = seen.setdefault(f"nhs-of-upn:{upn}", (nhs, number))
        if upn_nhs != nhs:
            problems.append(f"nhs_number: another NHS number than row {nhs_row}, which has the same UPN (a UPN is "
                            "one child's)")
        other, other_row = seen.setdefault(f"nhs:{nhs}", (item, number))
        if other["upn"] != upn and (other["date_of_birth"] != item["date_of_birth"] or
                                    normalise_name(other["given_name"]) != normalise_name(item["given_name"])):
            problems.append(f"nhs_number: the same NHS number as row {other_row}, a pupil with another UPN, date of "
                            "birth or given name (an NHS number is one child's)")
    return problems


def parse_csv(kind: str, text: str, port: ReferenceLoads) -> list[dict[str, Any]]:
    """Validate the whole file (a pupil's school asked of ``port``); raise ReferenceError listing every bad row.
    Rows are numbered as the file's lines are (a spreadsheet's row numbers): a blank line counts."""
    spec = _KINDS[kind]
    reader = csv.DictReader(io.StringIO(text))
    expected = list(COLUMNS[kind])
    optional_tail = ["iro_email"] if kind == "involvements" else []
    try:
        header = reader.fieldnames or []
    except csv.Error as error:
        raise ReferenceError([f"row 1: not readable as CSV ({error})"]) from None
    if header != expected and header != [c for c in expected if c not in optional_tail]:
        raise ReferenceError([_header_problem(list(header), expected, optional_tail)])
    problems: list[str] = []
    parsed: list[dict[str, Any]] = []
    first_row: dict[Any, int] = {}
    seen_numbers: dict[str, tuple[Any, int]] = {}
    rows = iter(reader)
    while True:
        try:
            values = next(rows)
        except StopIteration:
            break
        except csv.Error as error:  # an unbalanced quote, most often: what follows it is not readable
            problems.append(f"row {reader.line_num}: not readable as CSV ({error}); check the quotes on this row "
                            "or the row before it")
            break
        number = reader.line_num
        if None in values or any(v is None for v in values.values()):
            problems.append(f"row {number}: wrong number of columns")
            continue
        row_problems: list[str] = []
        item = spec.parse(_Row(values, row_problems), port)
        if not row_problems and item[spec.key] in first_row:
            row_problems.append(f"{spec.twice} (first on row {first_row[item[spec.key]]})")
        first_row.setdefault(item[spec.key], number)
        if kind == "pupils" and not row_problems:
            row_problems.extend(_one_child_per_number(item, number, seen_numbers))
        problems.extend(f"row {number}: {p}" for p in row_problems)
        parsed.append(item)
    if problems:
        raise ReferenceError(problems)
    return parsed


def load(port: ReferenceLoads, kind: str, text: str, now: datetime,
         required_teams: Collection[str] = (), *, allow_ending: bool = False) -> LoadReport:
    """Replace the current list for ``kind`` with the file's rows, in the caller's unit of work. A teams file
    without a row for each of ``required_teams`` (the teams the rules route to), or with one that has neither an
    email address nor a phone number, is refused, naming them. Unless ``allow_ending``, so is a file that would
    end much of what is current (see the module docstring)."""
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
        unreachable = sorted(item["team"] for item in items
                             if item["team"] in required_teams and not item["email"] and not item["phone"])
        if unreachable:
            raise ReferenceError([f"teams the rules route to have neither an email address nor a phone number: "
                                  f"{', '.join(unreachable)}"])
    keys = {item[spec.key] for item in items}
    current = port.current_keys(kind)
    if not allow_ending:
        _refuse_a_partial_file(kind, _guarded(kind, current), _guarded(kind, keys))
    warnings = _schools_left_with_pupils(port, current - keys, now.date()) if kind == "schools" else ()
    if kind in ("teams", "involvements"):
        warnings += _teams_without_a_row(port, kind, items, keys)
    changed = port.upsert_current_rows(kind, items)
    ended = port.end_vanished_rows(kind, keys, now)
    changed.extend(ended)
    if changed:
        # In this transaction: every running process's match index applies these (keys only) and its reference
        # snapshot (schools, teams, people's teams) is read again before its next batch.
        port.log_reference_changes(kind, changed, now)
    return LoadReport(kind, len(items), len(ended), warnings)



def _guarded(kind: str, keys: Collection[Any]) -> set[Any]:
    """What the partial-export guard counts: the rows' keys; for pupils, a pupil at a school (a corrected start date
    changes a row's key, and ends the row it replaces, but takes no child off a school's roll)."""
    return {key.rpartition("|")[0] for key in keys} if kind == "pupils" else set(keys)


def _refuse_a_partial_file(kind: str, current: set[str], keys: set[Any]) -> None:
    """Refuse a file that would end more than ``ENDING_GUARD_SHARE`` of the kind's current rows (and more than
    ``ENDING_GUARD_ROWS``): a partial or empty export would otherwise take children off their school's or their
    worker's route without a word."""
    vanishing = len(current - keys)
    if vanishing > ENDING_GUARD_ROWS and vanishing > ENDING_GUARD_SHARE * len(current):
        raise ReferenceError([
            f"this file would end {vanishing:,} of the {len(current):,} current {kind} "
            f"({vanishing / len(current):.0%}): is it a partial export? Nothing loaded. If so many have "
            "really gone, load it again with --allow-ending"])


def _schools_left_with_pupils(port: ReferenceLoads, ending: set[str], day: date) -> tuple[str, ...]:
    """The warning for schools this file ends while pupils are still on their roll: those pupils are no longer
    routed to a school (its DSL is not told) until a pupils file moves them."""
    on_roll = port.pupils_on_roll(ending, day) if ending else {}
    if not on_roll:
        return ()
    urns = ", ".join(f"{urn} ({count:,} pupils)" for urn, count in sorted(on_roll.items()))
    return (f"schools ended with pupils still on their roll: {urns}. Those pupils are no longer routed to the "
            "school's DSL: load the pupils file that moves them",)


def _teams_without_a_row(port: ReferenceLoads, kind: str, items: list[dict[str, Any]],
                         keys: set[Any]) -> tuple[str, ...]:
    """The warning for teams the involvements route to (a team with no allocated worker, the placing council's
    ``LA_{code}``) that have no row in the teams file: their notifications go to the front door as "no contact on
    file" instead. Asked of the files as they will be once this one is loaded."""
    if kind == "involvements":
        teams = {item["team"] for item in items if item["team"]}
        placing = {item["placing_la"] for item in items if item["placing_la"]}
        on_file = port.current_keys("teams")
    else:
        teams, placing = port.involvement_routes()
        on_file = keys
    missing = sorted((teams | {f"LA_{code}" for code in placing}) - on_file)
    if not missing:
        return ()
    return (f"teams the involvements route to have no row in the teams file: {', '.join(missing)}. Their "
            "notifications go to the front door as 'no contact on file': add them to the teams file",)
