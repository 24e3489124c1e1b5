"""Demo reference data: seeded, contract-shaped, realistic enough, and about no real person."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from pipeline.domain.matching import nhs_number_valid
from pipeline.service.demo_data import (
    AS_OF,
    COLUMNS,
    DEMO_LA_CODE,
    generate,
    make_nhs_number,
    nhs_check_digit_valid,
    upn_check_letter,
    upn_valid,
    write_csvs,
)

pytestmark = pytest.mark.unit

# Copied from /work/shared/spec/interfaces.md, "Reference CSVs".
CONTRACT_HEADERS = {
    "schools": "urn,name,la_code,in_area,school_type,dsl_email,dsl_phone,deputy_email,deputy_phone",
    "pupils": "upn,nhs_number,given_name,family_name,date_of_birth,sex,postcode,school_urn,on_roll_from,on_roll_to",
    "ehe": "given_name,family_name,date_of_birth,postcode,nhs_number",
    "involvements": "nhs_number,upn,given_name,family_name,date_of_birth,status,worker_email,team,manager_email,"
                    "placing_la,iro_email",
    "teams": "team,email,phone",
}
STATUSES = {"EARLY_HELP", "CHILD_IN_NEED", "CHILD_PROTECTION_PLAN", "CHILD_LOOKED_AFTER"}
POSTCODE = re.compile(r"^(NS[1-9]|OT4) [0-9][ABD-HJLNP-UW-Z]{2}$")
DATA = generate(seed=5, pupils=1000)
DEMO = generate()  # what `safeguard run --demo` loads: seed 1, 2000 pupils


def age_on(born: str, day: date) -> int:
    birth = date.fromisoformat(born)
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def test_headers_are_the_contracts() -> None:
    assert {kind: ",".join(columns) for kind, columns in COLUMNS.items()} == CONTRACT_HEADERS
    assert all(list(rows[0]) == list(COLUMNS[kind]) for kind, rows in DEMO.items())
    assert all(isinstance(v, str) for rows in DEMO.values() for row in rows for v in row.values())


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, second, other = (write_csvs(tmp_path / name, seed=seed, pupils=300)
                            for name, seed in (("a", 9), ("b", 9), ("c", 10)))
    assert set(first) == set(COLUMNS) and all(path.name == f"{kind}.csv" for kind, path in first.items())
    for kind in COLUMNS:
        data = first[kind].read_bytes()
        assert data == second[kind].read_bytes()
        assert b"\r" not in data and data.endswith(b"\n")
        assert data.decode("utf-8").split("\n")[0] == CONTRACT_HEADERS[kind]
        assert len(data.decode("utf-8").splitlines()) == len(generate(seed=9, pupils=300)[kind]) + 1
    for kind in ("schools", "pupils", "ehe", "involvements"):
        assert first[kind].read_bytes() != other[kind].read_bytes()


def test_nhs_check_digit() -> None:
    assert nhs_check_digit_valid("9434765919")
    assert nhs_check_digit_valid("943 476 5919")
    assert not nhs_check_digit_valid("9434765918")
    assert not nhs_check_digit_valid("943476591")
    assert not nhs_check_digit_valid("94347659190")
    assert not nhs_check_digit_valid("94347659l9")
    assert not nhs_check_digit_valid("")
    assert nhs_check_digit_valid("9990000018")  # the hand-made test world's number
    assert not nhs_check_digit_valid("9990000010")  # remainder 10: never issued
    rng = random.Random(3)
    made = [make_nhs_number(rng) for _ in range(500)]
    assert all(n.startswith("999") and nhs_check_digit_valid(n) and nhs_number_valid(n) for n in made)


def test_upn_check_letter() -> None:
    # By hand: 9*2+9*3+9*4+1*5+1*8+1*13 = 107; 107 mod 23 = 15, the 16th letter of A-Z without I, O, S.
    assert upn_check_letter("999100100001") == "R"
    assert upn_valid("R999100100001") and not upn_valid("A999100100001")
    assert not upn_valid("R99910010000") and not upn_valid("r999100100001")
    upns = [p["upn"] for p in DATA["pupils"]]
    assert all(len(u) == 13 and upn_valid(u) for u in upns)
    assert len(set(upns)) == len(upns)


def test_schools() -> None:
    schools = DEMO["schools"]
    assert 10 <= len(schools) <= 14
    assert len(generate(seed=1, pupils=6000)["schools"]) > len(schools)  # scales with the roll
    urns = [s["urn"] for s in schools]
    assert len(set(urns)) == len(urns) and all(re.fullmatch(r"1[0-9]{5}", u) for u in urns)
    local_state = [s for s in schools if s["in_area"] == "true" and s["school_type"] == "STATE"]
    assert len(local_state) >= len(schools) - 3
    assert all(s["la_code"] == DEMO_LA_CODE for s in schools if s["in_area"] == "true")
    assert any(s["school_type"] == "INDEPENDENT" and s["in_area"] == "true" for s in schools)
    assert any(s["school_type"] == "STATE" and s["in_area"] == "false" and s["la_code"] != DEMO_LA_CODE
               for s in schools)
    assert any(not s["deputy_email"] and not s["deputy_phone"] and s["dsl_email"] for s in local_state)
    assert any(not s["dsl_phone"] and s["dsl_email"] for s in local_state)
    first = min(local_state, key=lambda s: s["urn"])  # the demo DSL's school has every contact
    assert all(first[k] for k in ("dsl_email", "dsl_phone", "deputy_email", "deputy_phone"))
    assert all(re.fullmatch(r"(dsl|deputy\.dsl)@[a-z0-9-]+\.sch\.example", s[k])
               for s in schools for k in ("dsl_email", "deputy_email") if s[k])
    assert len({s["name"] for s in schools}) == len(schools)


def test_pupils_look_like_a_roll() -> None:
    pupils = DEMO["pupils"]
    assert len(pupils) == 2000 and len(DATA["pupils"]) == 1000
    schools = {s["urn"]: s for s in DEMO["schools"]}
    assert all(p["school_urn"] in schools for p in pupils)
    with_nhs = sum(1 for p in pupils if p["nhs_number"])
    assert 0.06 < with_nhs / len(pupils) < 0.14  # most rolls hold no NHS number
    sexes = Counter(p["sex"] for p in pupils)
    assert set(sexes) == {"M", "F", "U"} and sexes["U"] < 30 and abs(sexes["M"] - sexes["F"]) < 200
    assert all(POSTCODE.match(p["postcode"]) for p in pupils)
    outside = sum(1 for p in pupils if p["postcode"].startswith("OT"))
    assert 10 <= outside <= 120
    left = [p for p in pupils if p["on_roll_to"]]
    assert 20 <= len(left) <= 200
    assert all(p["on_roll_from"] < p["on_roll_to"] < AS_OF.isoformat() for p in left)
    assert all(p["on_roll_from"] <= AS_OF.isoformat() for p in pupils)
    assert all(p["given_name"] and p["family_name"] for p in pupils)
    assert len({p["family_name"] for p in pupils}) > 300


def test_ages_fit_the_school_phase() -> None:
    schools = {s["urn"]: s for s in DEMO["schools"]}
    ages: dict[str, set[int]] = {}
    for pupil in DEMO["pupils"]:
        ages.setdefault(pupil["school_urn"], set()).add(age_on(pupil["date_of_birth"], AS_OF))
    for urn, seen in ages.items():
        assert min(seen) >= 4 and max(seen) <= 17
        name = schools[urn]["name"]
        if "Primary" in name or "Infant" in name:
            assert max(seen) <= 10
        elif schools[urn]["school_type"] == "STATE":
            assert min(seen) >= 11
    all_ages = Counter(age_on(p["date_of_birth"], AS_OF) for p in DEMO["pupils"])
    assert set(all_ages) == set(range(4, 18))  # reception to year 13
    assert all_ages[16] + all_ages[17] < all_ages[14] + all_ages[15]  # fewer stay on for the sixth form


def test_twins_and_siblings() -> None:
    for data in (DATA, DEMO, generate(seed=8, pupils=200)):
        homes: dict[tuple[str, str], list[dict[str, str]]] = {}
        for pupil in data["pupils"]:
            homes.setdefault((pupil["family_name"], pupil["postcode"]), []).append(pupil)
        twins = [members for members in homes.values()
                 if len(members) >= 2 and len({m["date_of_birth"] for m in members}) < len(members)]
        assert len(twins) >= 2
        for members in twins:
            assert len({m["given_name"] for m in members}) == len(members)
        same_born = [[m for m in members if sum(o["date_of_birth"] == m["date_of_birth"] for o in members) > 1]
                     for members in twins]
        assert any(len({m["school_urn"] for m in group}) == 1 for group in same_born)
        siblings = [members for members in homes.values() if len({m["date_of_birth"] for m in members}) >= 2]
        assert len(siblings) >= 2
    identities = Counter((p["given_name"], p["family_name"], p["date_of_birth"]) for p in DEMO["pupils"])
    assert max(identities.values()) == 1


def test_ehe_register() -> None:
    ehe = DEMO["ehe"]
    assert 15 <= len(ehe) <= 25 and len(generate(seed=1, pupils=100)["ehe"]) >= 5
    assert any(e["nhs_number"] for e in ehe) and sum(1 for e in ehe if e["nhs_number"]) < len(ehe)
    on_roll = {(p["given_name"], p["family_name"], p["date_of_birth"]) for p in DEMO["pupils"]}
    assert not any((e["given_name"], e["family_name"], e["date_of_birth"]) in on_roll for e in ehe)
    assert all(5 <= age_on(e["date_of_birth"], AS_OF) <= 16 and POSTCODE.match(e["postcode"]) for e in ehe)


def test_involvements() -> None:
    involvements, pupils = DEMO["involvements"], DEMO["pupils"]
    by_upn = {p["upn"]: p for p in pupils}
    known = {(p["given_name"], p["family_name"], p["date_of_birth"]) for p in pupils}
    ehe = {(e["given_name"], e["family_name"], e["date_of_birth"]) for e in DEMO["ehe"]}
    assert {i["status"] for i in involvements} == STATUSES
    for status in STATUSES:
        assert sum(1 for i in involvements if i["status"] == status) >= 10
    of_pupils = [i for i in involvements if (i["given_name"], i["family_name"], i["date_of_birth"]) in known]
    assert 0.07 * len(pupils) <= len(of_pupils) <= 0.1 * len(pupils)
    assert any((i["given_name"], i["family_name"], i["date_of_birth"]) in ehe for i in involvements)
    assert any((i["given_name"], i["family_name"], i["date_of_birth"]) not in known | ehe for i in involvements)
    with_upn = [i for i in involvements if i["upn"]]
    assert 0.35 < len(with_upn) / len(involvements) < 0.65
    for inv in with_upn:
        pupil = by_upn[inv["upn"]]
        assert (inv["given_name"], inv["family_name"], inv["date_of_birth"]) == (
            pupil["given_name"], pupil["family_name"], pupil["date_of_birth"])
        assert not pupil["nhs_number"] or inv["nhs_number"] in ("", pupil["nhs_number"])
    assert any(i["nhs_number"] for i in involvements)
    workers = {i["worker_email"] for i in involvements}
    assert 6 <= len(workers) <= 14
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+@northshire\.gov\.example", w) for w in workers)
    teams = {row["team"] for row in DEMO["teams"]}
    assert {i["team"] for i in involvements} <= teams
    managers: dict[str, set[str]] = {}
    for inv in involvements:
        managers.setdefault(inv["team"], set()).add(inv["manager_email"])
    assert all(len(emails) == 1 for emails in managers.values())  # one manager per team
    worker_teams: dict[str, set[str]] = {}
    for inv in involvements:
        worker_teams.setdefault(inv["worker_email"], set()).add(inv["team"])
    assert all(len(t) == 1 for t in worker_teams.values())  # a worker belongs to one team
    looked_after = [i for i in involvements if i["status"] == "CHILD_LOOKED_AFTER"]
    assert all(i["iro_email"] for i in looked_after)
    assert not any(i["iro_email"] for i in involvements if i["status"] != "CHILD_LOOKED_AFTER")
    placing = {i["placing_la"] for i in involvements if i["placing_la"]}
    assert placing and placing <= {"888", "777"}
    assert not any(i["placing_la"] for i in involvements if i["status"] != "CHILD_LOOKED_AFTER")
    assert {f"LA_{code}" for code in placing} <= teams


def test_teams() -> None:
    teams = {row["team"]: row for row in DEMO["teams"]}
    assert {"SCIES", "EHE_MANAGER", "CME", "FRONT_DOOR", "FRONT_DOOR_MANAGER", "MISSING_COORDINATOR", "RHI_PROVIDER",
            "EDUCATION_SAFEGUARDING_LEAD", "HEAD_OF_SERVICE", "DIRECTOR", "LA_888", "LA_777"} <= set(teams)
    assert teams["FRONT_DOOR"]["email"] == "front-door@northshire.gov.example"
    assert teams["EDUCATION_SAFEGUARDING_LEAD"]["email"] == "education-safeguarding-lead@northshire.gov.example"
    assert all(row["email"] and row["phone"] for row in teams.values())
    assert len({row["phone"] for row in teams.values()}) == len(teams)


@pytest.mark.parametrize("data", [DATA, DEMO], ids=["1000", "demo"])
def test_no_real_person(data: dict[str, list[dict[str, str]]]) -> None:
    numbers = [row["nhs_number"] for kind in ("pupils", "ehe", "involvements") for row in data[kind]
               if row["nhs_number"]]
    assert numbers and all(n.startswith("999") and nhs_number_valid(n) and nhs_check_digit_valid(n)
                           for n in numbers)
    owners: dict[str, set[tuple[str, str, str]]] = {}
    for kind in ("pupils", "ehe", "involvements"):
        for row in data[kind]:
            if row["nhs_number"]:
                owners.setdefault(row["nhs_number"], set()).add(
                    (row["given_name"], row["family_name"], row["date_of_birth"]))
    assert all(len(people) == 1 for people in owners.values())  # one number, one child
    emails = [v for kind in data for row in data[kind] for k, v in row.items() if "email" in k and v]
    assert emails and all(e.endswith(".example") for e in emails)
    phones = [v for kind in data for row in data[kind] for k, v in row.items() if "phone" in k and v]
    assert phones and all(re.fullmatch(r"\+447700900[0-9]{3}", p) for p in phones)  # Ofcom's drama range


def test_small_and_empty_rolls_still_cover_the_cases() -> None:
    for size in (0, 5, 40):
        data = generate(seed=4, pupils=size)
        assert len(data["pupils"]) == size and len(data["ehe"]) >= 5
        assert {s["school_type"] for s in data["schools"]} == {"STATE", "INDEPENDENT"}
        assert any(s["in_area"] == "false" for s in data["schools"])
        assert {i["status"] for i in data["involvements"]} == STATUSES
        upns = {p["upn"] for p in data["pupils"]}
        assert all(i["upn"] in upns for i in data["involvements"] if i["upn"])


def test_the_csvs_pass_the_loaders_validation(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pipeline.adapters.store import Store
    from pipeline.service.reference import load

    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    store.migrate()
    written = write_csvs(tmp_path, seed=2, pupils=300)
    with store.unit_of_work() as port:
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            report = load(port, kind, written[kind].read_text(encoding="utf-8"), datetime.now(UTC))
            assert report.rows == len(generate(seed=2, pupils=300)[kind]) and report.ended == 0
    store.dispose()
