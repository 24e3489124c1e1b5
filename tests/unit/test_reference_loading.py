"""Loading reference files (pipeline/service/reference.py) on the store port's fake, as a council's data officer's
exports really look: a partial or empty export is refused before it ends children's records, a school with pupils
on its roll is not ended by a schools file, a routed team needs a contact, what spreadsheets do to values is
forgiven, and every refusal says where (the file's row) and what, never the value."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from pipeline.adapters.memory_store import MemoryStore
from pipeline.service.demo_data import csv_text, generate
from pipeline.service.reference import ENDING_GUARD_ROWS, LoadReport, ReferenceError, load
from tests.support.world import PUPILS, REFERENCE, SCHOOLS, TEAMS

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
ROUTED = ("SCIES", "CME", "FRONT_DOOR")


@pytest.fixture
def demo() -> tuple[MemoryStore, dict[str, list[dict[str, str]]]]:
    """The fake with a demo council of 400 pupils loaded (more than the guard's minimum of rows)."""
    data = generate(seed=3, pupils=400)
    store = MemoryStore()
    with store.unit_of_work() as port:
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            load(port, kind, csv_text(kind, data[kind]), NOW)
    return store, data


def _refusal(store: MemoryStore, kind: str, text: str, **options: bool) -> list[str]:
    with pytest.raises(ReferenceError) as refused, store.unit_of_work() as port:
        load(port, kind, text, NOW, ROUTED, **options)
    return refused.value.problems


def _current(store: MemoryStore, kind: str) -> int:
    with store.unit_of_work() as port:
        return len(port.current_keys(kind))


def test_a_header_only_or_half_file_is_refused_as_a_partial_export_and_ends_nothing(
        demo: tuple[MemoryStore, dict[str, list[dict[str, str]]]]) -> None:
    store, data = demo
    pupils = data["pupils"]
    on_file = _current(store, "pupils")
    for rows in ([], pupils[: len(pupils) // 2]):
        problems = _refusal(store, "pupils", csv_text("pupils", rows))
        assert len(problems) == 1 and "is it a partial export? Nothing loaded" in problems[0]
        assert "--allow-ending" in problems[0]
        assert _current(store, "pupils") == on_file


def test_a_partial_file_loads_when_the_ending_is_allowed(
        demo: tuple[MemoryStore, dict[str, list[dict[str, str]]]]) -> None:
    store, data = demo
    half = data["pupils"][: len(data["pupils"]) // 2]
    with store.unit_of_work() as port:
        report = load(port, "pupils", csv_text("pupils", half), NOW, allow_ending=True)
    assert report.rows == len(half) and report.ended == len(data["pupils"]) - len(half)


def test_a_few_leavers_are_ended_without_asking(demo: tuple[MemoryStore, dict[str, list[dict[str, str]]]]) -> None:
    store, data = demo
    stayed = data["pupils"][ENDING_GUARD_ROWS:]  # as many leave as the guard allows
    with store.unit_of_work() as port:
        assert load(port, "pupils", csv_text("pupils", stayed), NOW).ended == ENDING_GUARD_ROWS


def test_a_schools_file_that_ends_a_school_with_pupils_on_roll_loads_with_a_warning_naming_it(
        demo: tuple[MemoryStore, dict[str, list[dict[str, str]]]]) -> None:
    store, data = demo
    with_pupils = Counter(row["school_urn"] for row in data["pupils"] if not row["on_roll_to"])
    dropped = sorted(with_pupils)[0]
    with store.unit_of_work() as port:
        report = load(port, "schools", csv_text("schools", [r for r in data["schools"] if r["urn"] != dropped]), NOW)
    assert report.ended == 1
    assert report.warnings == (f"schools ended with pupils still on their roll: {dropped} ({with_pupils[dropped]:,} "
                               "pupils). Those pupils are no longer routed to the school's DSL: load the pupils "
                               "file that moves them",)
    with store.unit_of_work() as port:  # the school back: no warning
        assert load(port, "schools", csv_text("schools", data["schools"]), NOW).warnings == ()


def test_a_small_councils_files_are_the_full_current_list_as_ever() -> None:
    store = MemoryStore()
    with store.unit_of_work() as port:
        for kind, text in REFERENCE.items():
            load(port, kind, text, NOW)
        shorter = "".join(line + "\n" for line in PUPILS.strip().splitlines()[:-2])
        assert load(port, "pupils", shorter, NOW) == LoadReport("pupils", 7, 2)


def test_a_routed_team_with_neither_email_nor_phone_is_refused() -> None:
    store = MemoryStore()
    unreachable = TEAMS.replace("front.door@northshire.gov.example,+447700900101", ",")
    problems = _refusal(store, "teams", unreachable)
    assert problems == ["teams the rules route to have neither an email address nor a phone number: FRONT_DOOR"]


def test_what_spreadsheets_do_to_values_is_forgiven() -> None:
    store = MemoryStore()
    schools = SCHOOLS.replace("100001,Riverside Primary School,999,true", "100001,Riverside Primary School,999,TRUE") \
        .replace("100004,Border High School,888,false", "100004,Border High School,888,No")
    pupils = PUPILS.replace("A999100100001,9990000018", "a999100100001,999 000 0018") \
        .replace("2013-05-14,F,", "2013-05-14T00:00:00,Female,")
    with store.unit_of_work() as port:
        load(port, "schools", schools, NOW)
        load(port, "pupils", pupils, NOW)
        riverside, border = port.school("100001"), port.school("100004")
    assert riverside is not None and riverside.in_area and border is not None and not border.in_area
    (amelia,) = [row for row in store._state.pupils.values() if row.upn == "A999100100001"]
    assert (amelia.nhs_number, str(amelia.date_of_birth), amelia.sex) == ("9990000018", "2013-05-14", "F")


def test_refusals_name_the_files_rows_and_what_is_wrong_never_the_value() -> None:
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", SCHOOLS, NOW)
    lines = PUPILS.splitlines()
    bad = "\n".join([lines[0], lines[1], "", lines[2].replace("2011-02-03", "03/02/2011"),
                     lines[3].replace(",F,", ",X,"), lines[1].replace("Amelia", "Amelie")]) + "\n"
    problems = _refusal(store, "pupils", bad)
    assert problems == [
        "row 4: date_of_birth: not an ISO date (YYYY-MM-DD) (this looks like a day/month/year date: write it as "
        "YYYY-MM-DD)",
        "row 5: sex: must be one of M, F, U",
        "row 6: upn, school_urn and on_roll_from: the same enrolment appears twice in the file (first on row 2)",
    ]
    assert not any("03/02/2011" in p or "Amelie" in p for p in problems)


def test_a_header_that_is_not_the_contracts_says_which_columns() -> None:
    store = MemoryStore()
    header, _, rest = SCHOOLS.partition("\n")
    assert _refusal(store, "schools", header.upper() + "\n" + rest)[0].endswith(
        "(missing urn, name, la_code, in_area, school_type, dsl_email, dsl_phone, deputy_email, deputy_phone; not "
        "in the contract: URN, NAME, LA_CODE, IN_AREA, SCHOOL_TYPE, DSL_EMAIL, DSL_PHONE, DEPUTY_EMAIL, "
        "DEPUTY_PHONE)")
    assert _refusal(store, "schools", header + ",mis_id\n")[0].endswith("(not in the contract: mis_id)")
    swapped = header.replace("urn,name", "name,urn")
    assert _refusal(store, "schools", swapped + "\n")[0].endswith("(the columns are in another order)")
    assert _refusal(store, "schools", "")[0].startswith("row 1: the file is empty")


def test_an_unbalanced_quote_is_a_refusal_with_its_row_not_a_crash() -> None:
    store = MemoryStore()
    with store.unit_of_work() as port:
        load(port, "schools", SCHOOLS, NOW)
    lines = PUPILS.splitlines()
    broken = "\n".join([lines[0], lines[1], lines[2].replace("Oliver", '"Oliver'), *lines[3:]]) + "\n"
    problems = _refusal(store, "pupils", broken + "x" * 140_000 + "\n")
    assert len(problems) == 1 and problems[0].startswith("row ") and "not readable as CSV" in problems[0]
    assert "Oliver" not in problems[0]


def test_teams_the_involvements_route_to_without_a_row_are_named_when_either_file_is_loaded() -> None:
    store = MemoryStore()
    involvements = REFERENCE["involvements"]
    with store.unit_of_work() as port:
        for kind in ("schools", "teams", "pupils"):
            load(port, kind, REFERENCE[kind], NOW)
        warned = load(port, "involvements", involvements, NOW).warnings
        assert warned == ("teams the involvements route to have no row in the teams file: CLA_TEAM, EARLY_HELP. "
                          "Their notifications go to the front door as 'no contact on file': add them to the "
                          "teams file",)
        with_rows = TEAMS + "CLA_TEAM,cla@northshire.gov.example,\nEARLY_HELP,eh@northshire.gov.example,\n"
        assert load(port, "teams", with_rows, NOW).warnings == ()
        assert load(port, "involvements", involvements, NOW).warnings == ()
        without_la = with_rows.replace("LA_888,la888@otherplace.gov.example,\n", "")
        assert "no row in the teams file: LA_888." in load(port, "teams", without_la, NOW).warnings[0]
