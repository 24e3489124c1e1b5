"""Demo reference data: seeded, contract-shaped, realistic enough, and about no real person."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.domain.matching import nhs_number_valid
from pipeline.service.demo_data import COLUMNS, generate, write_csvs

pytestmark = pytest.mark.unit

CONTRACT_HEADERS = {
    "schools": "urn,name,la_code,in_area,school_type,dsl_email,dsl_phone,deputy_email,deputy_phone",
    "pupils": "upn,nhs_number,given_name,family_name,date_of_birth,sex,postcode,school_urn,on_roll_from,on_roll_to",
    "ehe": "given_name,family_name,date_of_birth,postcode,nhs_number",
    "involvements": "nhs_number,upn,given_name,family_name,date_of_birth,status,worker_email,team,manager_email,"
                    "placing_la,iro_email",
    "teams": "team,email,phone",
}
DATA = generate(seed=5, pupils=1000)


def test_headers_are_the_contracts() -> None:
    assert {kind: ",".join(columns) for kind, columns in COLUMNS.items()} == CONTRACT_HEADERS


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, second, other = (write_csvs(tmp_path / name, seed=seed, pupils=300)
                            for name, seed in (("a", 9), ("b", 9), ("c", 10)))
    for kind in COLUMNS:
        assert first[kind].read_bytes() == second[kind].read_bytes()
        assert first[kind].read_text().splitlines()[0] == CONTRACT_HEADERS[kind]
    assert first["pupils"].read_bytes() != other["pupils"].read_bytes()


def test_realistic_shape() -> None:
    pupils = DATA["pupils"]
    assert len(pupils) == 1000
    with_nhs = sum(1 for p in pupils if p["nhs_number"])
    assert 0.03 < with_nhs / len(pupils) < 0.2  # most rolls hold no NHS number
    households = {}
    for pupil in pupils:
        households.setdefault((pupil["family_name"], pupil["date_of_birth"], pupil["postcode"]), []).append(pupil)
    assert sum(1 for members in households.values() if len(members) >= 2) >= 2  # twins
    schools = {s["urn"]: s for s in DATA["schools"]}
    assert {s["school_type"] for s in schools.values()} == {"STATE", "INDEPENDENT"}
    assert any(s["in_area"] == "false" for s in schools.values())
    assert all(p["school_urn"] in schools for p in pupils)
    upns = {p["upn"] for p in pupils}
    assert len(upns) == len(pupils)
    assert all(i["upn"] in upns for i in DATA["involvements"] if i["upn"])
    assert {i["status"] for i in DATA["involvements"]} == {"EARLY_HELP", "CHILD_IN_NEED", "CHILD_PROTECTION_PLAN",
                                                           "CHILD_LOOKED_AFTER"}
    assert {"SCIES", "FRONT_DOOR", "EDUCATION_SAFEGUARDING_LEAD", "LA_888"} <= {t["team"] for t in DATA["teams"]}


def test_no_real_person() -> None:
    numbers = [row["nhs_number"] for kind in ("pupils", "ehe", "involvements") for row in DATA[kind]
               if row["nhs_number"]]
    assert numbers and all(n.startswith("999") and nhs_number_valid(n) for n in numbers)
    emails = [v for kind in DATA for row in DATA[kind] for k, v in row.items() if "email" in k and v]
    assert emails and all(e.endswith(".example") for e in emails)
    phones = [v for kind in DATA for row in DATA[kind] for k, v in row.items() if "phone" in k and v]
    assert phones and all(p.startswith("+447700900") for p in phones)  # Ofcom's drama range


def test_the_csvs_pass_the_loaders_validation(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pipeline.adapters.store import Store
    from pipeline.service.reference import load

    store = Store(f"sqlite:///{tmp_path / 'demo.db'}")
    store.migrate()
    written = write_csvs(tmp_path, seed=2, pupils=300)
    with store.transaction() as session:
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            report = load(session, kind, written[kind].read_text(encoding="utf-8"), datetime.now(UTC))
            session.flush()
            assert report.rows == len(generate(seed=2, pupils=300)[kind]) and report.ended == 0
