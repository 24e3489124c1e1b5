"""Seeded synthetic reference data for a fictional council (Northshire, LA 999). No real person.

Names come from Faker's en_GB provider; emails are on ``.example`` domains, phones in Ofcom's drama
range, NHS numbers in the 999 test range, postcodes in fictional NS districts. The same seed and size
give byte-identical CSVs. ``COLUMNS`` is the single source of truth for the contract's CSV headers.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from pipeline.domain.matching import nhs_number_valid

DEMO_LA_CODE = "999"
AS_OF = date(2026, 9, 1)
COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": ("urn", "name", "la_code", "in_area", "school_type", "dsl_email", "dsl_phone", "deputy_email",
                "deputy_phone"),
    "pupils": ("upn", "nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode", "school_urn",
               "on_roll_from", "on_roll_to"),
    "ehe": ("given_name", "family_name", "date_of_birth", "postcode", "nhs_number"),
    "involvements": ("nhs_number", "upn", "given_name", "family_name", "date_of_birth", "status", "worker_email",
                     "team", "manager_email", "placing_la", "iro_email"),
    "teams": ("team", "email", "phone"),
}
TEAM_CODES = ("SCIES", "EHE_MANAGER", "CME", "FRONT_DOOR", "FRONT_DOOR_MANAGER", "MISSING_COORDINATOR",
              "RHI_PROVIDER", "EDUCATION_SAFEGUARDING_LEAD", "HEAD_OF_SERVICE", "DIRECTOR", "LA_888", "LA_777")
CASE_TEAMS = ("CSC_NORTH", "CSC_SOUTH", "EARLY_HELP", "YOUTH_JUSTICE", "CLA_TEAM")
STATUSES = ("EARLY_HELP", "CHILD_IN_NEED", "CHILD_PROTECTION_PLAN", "CHILD_LOOKED_AFTER")
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # the DfE check-letter alphabet (no I, O, S)

Row = dict[str, str]


def nhs_check_digit_valid(nhs_number: str) -> bool:
    return nhs_number_valid(nhs_number)


def make_nhs_number(rng: random.Random) -> str:
    while True:
        candidate = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        for check in range(10):
            if nhs_number_valid(candidate + str(check)):
                return candidate + str(check)


def make_upn(rng: random.Random, la_code: str) -> str:
    """A UPN: check letter, LA code, establishment number, year and serial (13 characters)."""
    body = la_code + f"{rng.randrange(1000, 9999)}" + f"{rng.randrange(10, 26)}" + f"{rng.randrange(0, 999):03d}"
    total = sum((i + 2) * (_UPN_LETTERS + "0123456789").index(ch) % 23 if ch.isalpha() else (i + 2) * int(ch)
                for i, ch in enumerate(body))
    return _UPN_LETTERS[total % 23] + body


def _phone(rng: random.Random) -> str:
    return f"+447700900{rng.randrange(0, 1000):03d}"


def _postcode(rng: random.Random, outward: str) -> str:
    return f"{outward} {rng.randrange(1, 10)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


def generate(seed: int = 1, pupils: int = 2000) -> dict[str, list[Row]]:
    rng = random.Random(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    districts = [f"NS{n}" for n in range(1, 10)]

    schools: list[Row] = []
    school_count = max(4, pupils // 170)
    for index in range(school_count):
        phase = "Primary" if index % 3 != 2 else "Academy"
        name = f"{fake.last_name()} {'Primary School' if phase == 'Primary' else 'Academy'}"
        in_area, school_type, la_code = "true", "STATE", DEMO_LA_CODE
        if index == school_count - 1:
            school_type = "INDEPENDENT"
            name = f"{fake.last_name()} House School"
        elif index == school_count - 2:
            in_area, la_code = "false", "888"
        domain = f"{_slug(name)}.sch.example"
        schools.append({
            "urn": str(100001 + index), "name": name, "la_code": la_code, "in_area": in_area,
            "school_type": school_type, "dsl_email": f"dsl@{domain}", "dsl_phone": "" if index == 1 else _phone(rng),
            "deputy_email": "" if index == 2 else f"deputy.dsl@{domain}",
            "deputy_phone": "" if index == 2 else _phone(rng),
        })

    pupil_rows: list[Row] = []
    used_upns: set[str] = set()

    def add_pupil(given: str, family: str, born: date, sex: str, postcode: str, urn: str) -> Row:
        upn = make_upn(rng, DEMO_LA_CODE)
        while upn in used_upns:
            upn = make_upn(rng, DEMO_LA_CODE)
        used_upns.add(upn)
        left = rng.random() < 0.04
        row = {
            "upn": upn, "nhs_number": make_nhs_number(rng) if rng.random() < 0.1 else "", "given_name": given,
            "family_name": family, "date_of_birth": born.isoformat(), "sex": sex, "postcode": postcode,
            "school_urn": urn, "on_roll_from": (AS_OF - timedelta(days=rng.randrange(30, 2000))).isoformat(),
            "on_roll_to": (AS_OF - timedelta(days=rng.randrange(1, 25))).isoformat() if left else "",
        }
        pupil_rows.append(row)
        return row

    while len(pupil_rows) < pupils:
        school = schools[rng.randrange(len(schools))]
        primary = "Primary" in school["name"]
        age = rng.randrange(4, 11) if primary else rng.randrange(11, 18)
        born = AS_OF - timedelta(days=age * 365 + rng.randrange(0, 365))
        sex = rng.choice("MF") if rng.random() > 0.01 else "U"
        given = fake.first_name_male() if sex == "M" else fake.first_name_female()
        outward = rng.choice(districts) if rng.random() > 0.03 else "OT4"
        family, postcode = fake.last_name(), _postcode(rng, outward)
        add_pupil(given, family, born, sex, postcode, school["urn"])
        if len(pupil_rows) % 97 == 0 and len(pupil_rows) < pupils:  # twins: same family, birthday, address
            add_pupil(fake.first_name_female(), family, born, "F", postcode, school["urn"])
        elif len(pupil_rows) % 41 == 0 and len(pupil_rows) < pupils:  # a sibling
            add_pupil(fake.first_name(), family, born - timedelta(days=700), rng.choice("MF"), postcode,
                      school["urn"])
    pupil_rows = pupil_rows[:pupils]

    ehe_rows: list[Row] = []
    for _ in range(max(5, pupils // 100)):
        born = AS_OF - timedelta(days=rng.randrange(5 * 365, 16 * 365))
        ehe_rows.append({"given_name": fake.first_name(), "family_name": fake.last_name(),
                         "date_of_birth": born.isoformat(), "postcode": _postcode(rng, rng.choice(districts)),
                         "nhs_number": make_nhs_number(rng) if rng.random() < 0.3 else ""})

    workers = [f"{fake.first_name().lower()}.{fake.last_name().lower()}@northshire.gov.example" for _ in range(10)]
    managers = {team: f"manager.{team.lower().replace('_', '-')}@northshire.gov.example" for team in CASE_TEAMS}
    involvement_rows: list[Row] = []
    chosen = rng.sample(pupil_rows, k=max(4, pupils * 8 // 100))
    for index, pupil in enumerate(chosen):
        status = STATUSES[index % 4]
        team = "CLA_TEAM" if status == "CHILD_LOOKED_AFTER" else rng.choice(CASE_TEAMS[:4])
        involvement_rows.append({
            "nhs_number": pupil["nhs_number"], "upn": pupil["upn"] if rng.random() < 0.5 else "",
            "given_name": pupil["given_name"], "family_name": pupil["family_name"],
            "date_of_birth": pupil["date_of_birth"], "status": status, "worker_email": rng.choice(workers),
            "team": team, "manager_email": managers[team],
            "placing_la": rng.choice(["888", "777"]) if status == "CHILD_LOOKED_AFTER" and index % 3 == 0 else "",
            "iro_email": "iro.team@northshire.gov.example" if status == "CHILD_LOOKED_AFTER" else "",
        })
    teams = [{"team": code, "email": f"{code.lower().replace('_', '-')}@northshire.gov.example",
              "phone": _phone(rng)} for code in TEAM_CODES + CASE_TEAMS]
    return {"schools": schools, "pupils": pupil_rows, "ehe": ehe_rows, "involvements": involvement_rows,
            "teams": teams}


def write_csvs(out_dir: Path, seed: int = 1, pupils: int = 2000) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind, rows in generate(seed, pupils).items():
        path = out_dir / f"{kind}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS[kind]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written[kind] = path
    return written
