"""A seeded generator of a labelled matching set: a school roll of English children (the demo generator's
households, with twins and siblings sharing a surname and address), events about them carrying the usual
corruptions, and the truth (which pupil each event is about, or none).

Per event, independently: 15% a nickname or alias, 10% a typo in a name, 5% given and family names
transposed, 8% a changed or hyphenated surname, 5% day and month of birth swapped, 5% one digit of the date
of birth wrong, 20% a previous postcode, 60% no NHS number, 10% no postcode, 2% no date of birth, 2% no
given name; 10% of events are about children on no roll. No real person: names from Faker's en_GB
provider and the demo generator's lists, NHS numbers in the 999 test range.
"""

from __future__ import annotations

import csv
import json
import random
import string
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from nicknames import NickNamer

from pipeline.service.demo_data import COLUMNS, DISTRICTS, generate, make_nhs_number

RATES = {"nickname": 0.15, "typo": 0.10, "transposed": 0.05, "surname_changed": 0.08, "day_month_swap": 0.05,
         "one_digit": 0.05, "previous_postcode": 0.20, "no_nhs_number": 0.60, "no_postcode": 0.10,
         "no_date_of_birth": 0.02, "no_given_name": 0.02, "off_roll": 0.10}


@dataclass(frozen=True)
class SyntheticSet:
    schools: list[dict[str, str]]
    pupils: list[dict[str, str]]
    events: list[dict[str, Any]]
    truth: list[dict[str, str]]


def _typo(rng: random.Random, name: str) -> str:
    if len(name) < 3:
        return name + rng.choice(string.ascii_lowercase)
    i = rng.randrange(1, len(name))
    kind = rng.randrange(4)
    if kind == 0:
        return name[:i] + name[i + 1:]
    if kind == 1:
        return name[:i] + rng.choice(string.ascii_lowercase) + name[i:]
    if kind == 2:
        return name[:i] + rng.choice(string.ascii_lowercase) + name[i + 1:]
    if i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name[:-1]


def _one_digit(rng: random.Random, born: date) -> date:
    for _ in range(50):
        digits = list(born.strftime("%Y%m%d"))
        position = rng.choice([2, 3, 4, 5, 6, 7])
        digits[position] = rng.choice([d for d in string.digits if d != digits[position]])
        text = "".join(digits)
        try:
            changed = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            continue
        if changed < date(2026, 9, 1):
            return changed
    return born + timedelta(days=1)


def _postcode(rng: random.Random) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"{rng.choice(DISTRICTS)} {rng.randrange(1, 10)}{rng.choice(letters)}{rng.choice(letters)}"


class _Corrupter:
    def __init__(self, rng: random.Random, surnames: list[str]) -> None:
        self.rng = rng
        self.surnames = surnames
        self.nicknames = NickNamer()

    def alias(self, given: str) -> str:
        options = sorted(self.nicknames.nicknames_of(given) | self.nicknames.canonicals_of(given))
        return self.rng.choice(options).title() if options else given

    def child(self, pupil: dict[str, str], nhs: str, school_name: str) -> dict[str, Any]:
        rng, rate = self.rng, RATES
        given, family = pupil["given_name"], pupil["family_name"]
        born: date | None = date.fromisoformat(pupil["date_of_birth"])
        postcode: str | None = pupil["postcode"]
        if rng.random() < rate["nickname"]:
            given = self.alias(given)
        if rng.random() < rate["typo"]:
            if rng.random() < 0.5:
                given = _typo(rng, given.lower()).title()
            else:
                family = _typo(rng, family.lower()).title()
        if rng.random() < rate["surname_changed"]:
            other = rng.choice(self.surnames)
            family = rng.choice([f"{family}-{other}", f"{other}-{family}", other])
        if rng.random() < rate["transposed"]:
            given, family = family, given
        assert born is not None
        if rng.random() < rate["day_month_swap"] and born.day <= 12 and born.day != born.month:
            born = born.replace(month=born.day, day=born.month)
        if rng.random() < rate["one_digit"]:
            born = _one_digit(rng, born)
        if rng.random() < rate["previous_postcode"]:
            postcode = _postcode(rng)
        if rng.random() < rate["no_postcode"]:
            postcode = None
        if rng.random() < rate["no_date_of_birth"]:
            born = None
        given_out: str | None = given
        if rng.random() < rate["no_given_name"]:
            given_out = None
        return {"nhs_number": None if rng.random() < rate["no_nhs_number"] else nhs, "given_name": given_out,
                "family_name": family, "date_of_birth": born.isoformat() if born else None,
                "sex": pupil["sex"] or None, "postcode": postcode,
                "school_name": school_name if school_name and rng.random() < 0.4 else None}


def synthesise(seed: int, pupils: int, events: int) -> SyntheticSet:
    """A roll of ``pupils`` children, ``events`` events about them (10% about children on no roll), the truth."""
    data = generate(seed=seed, pupils=pupils)
    outsiders = generate(seed=seed + 7919, pupils=max(50, int(events * RATES["off_roll"] * 1.2)))["pupils"]
    rng = random.Random(seed * 31 + 17)
    schools = {row["urn"]: row["name"] for row in data["schools"]}
    surnames = sorted({row["family_name"] for row in data["pupils"]})
    corrupter = _Corrupter(rng, surnames)
    true_nhs = {row["upn"]: row["nhs_number"] or make_nhs_number(rng) for row in data["pupils"] + outsiders}
    out_events: list[dict[str, Any]] = []
    truth: list[dict[str, str]] = []
    roll = data["pupils"]
    for number in range(events):
        off_roll = rng.random() < RATES["off_roll"]
        pupil = rng.choice(outsiders if off_roll else roll)
        event_id = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-" \
                   f"{8 + rng.randrange(4):x}{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
        school_name = "" if off_roll else schools.get(pupil["school_urn"], "")
        out_events.append({
            "event_id": event_id, "attendance_id": f"SYN-{seed}-{number}", "hospital_ods_code": "RXX01",
            "arrived_at": "2026-11-24T20:00:00+00:00",
            "child": corrupter.child(pupil, true_nhs[pupil["upn"]], school_name),
            "admitted": False, "risk_summary": "synthetic", "exploitation_screening": "NO_CONCERN",
            "consent": "GIVEN", "shared_without_consent_reason": None, "clinician_contact": "synthetic",
        })
        truth.append({"event_id": event_id, "upn": "" if off_roll else pupil["upn"]})
    return SyntheticSet(data["schools"], roll, out_events, truth)


def write_set(out: Path, seed: int, pupils: int, events: int) -> dict[str, Path]:
    made = synthesise(seed, pupils, events)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"schools": out / "schools.csv", "pupils": out / "pupils.csv", "events": out / "events.jsonl",
             "truth": out / "truth.csv"}
    for kind in ("schools", "pupils"):
        with paths[kind].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS[kind])
            writer.writeheader()
            writer.writerows(made.schools if kind == "schools" else made.pupils)
    paths["events"].write_text("".join(json.dumps(e) + "\n" for e in made.events), encoding="utf-8")
    with paths["truth"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=("event_id", "upn"))
        writer.writeheader()
        writer.writerows(made.truth)
    return paths
