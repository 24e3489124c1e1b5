"""Seeded synthetic reference data for a fictional council (Northshire, LA 999). No real person.

What it makes, for ``pupils`` children on roll (sizes scale with it):

- schools: about one per 165 pupils; mostly in-area state primaries and secondaries (some with a sixth
  form), one in-area independent all-through school, one out-of-area state secondary (LA 888) that some
  Northshire children attend. One in-area state school has no deputy DSL and another no DSL phone, so
  that the fallbacks get exercised.
- pupils: households (single children, siblings, twins) with DfE-style UPNs (valid check letter),
  dates of birth in the right cohort for their national curriculum year (age at ``AS_OF`` is 4 + year
  group), postcodes in fictional districts NS1-NS9 (a few from OT4, outside the area), on-roll dates from
  when they joined, a few who have left, and an NHS number for about one in ten.
- ehe: about 1% of the pupil count (at least 5), none on a roll.
- involvements: about 8% of pupils (siblings often open together) plus some home-educated and
  unknown children; workers, managers and IROs from small named pools.
- teams: the council's routing contacts, the case teams, and ``LA_888`` / ``LA_777`` for placing councils.

Family and staff names come from Faker's ``en_GB`` provider; children's given names from a list of
names popular in England and Wales for children born 2008-2022. Emails are on ``.example`` domains,
phones in Ofcom's drama range (07700 900000-900999), NHS numbers in the 999 test range. Nothing reads
the clock: everything is relative to ``AS_OF``, and the same seed and size give byte-identical CSVs.

``COLUMNS`` is the single source of truth for the contract's CSV headers.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

from pipeline.domain.matching import nhs_number_valid

DEMO_LA_CODE = "999"
DEMO_LA_NAME = "Northshire"
AS_OF = date(2026, 9, 1)  # the reference date for ages and on-roll dates: the first day of 2026/27
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
OTHER_LAS = {"888": "eastmoor", "777": "westvale"}  # fictional neighbouring councils (placing / out of area)
DISTRICTS = tuple(f"NS{n}" for n in range(1, 10))
SOUTH_DISTRICTS = DISTRICTS[5:]  # NS6-NS9 are CSC_SOUTH's patch; the rest CSC_NORTH's
OUTSIDE_DISTRICTS = ("OT4",)
GOV_DOMAIN = "northshire.gov.example"

Row = dict[str, str]

_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # the DfE check-letter alphabet (no I, O, S): remainder 0-22
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters used in the inward code (no C, I, K, M, O, V)
_STATUS_WEIGHTS = (38, 30, 14, 18)  # roughly the mix of open cases: early help, CIN, CP plan, looked after

# Given names popular in England and Wales for children born 2008-2022 (ONS baby-name tables).
_BOYS = (
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar", "Charlie", "Jacob",
    "Thomas", "Henry", "William", "Freddie", "Alfie", "Theo", "Archie", "Joshua", "James", "Lucas", "Isaac",
    "Alexander", "Ethan", "Max", "Edward", "Logan", "Mason", "Teddy", "Finley", "Hugo", "Dylan", "Riley", "Adam",
    "Elijah", "Harrison", "Daniel", "Samuel", "Joseph", "Reggie", "Rory", "Sebastian", "Tommy", "Albie", "Louie",
    "Ronnie", "Toby", "Jaxon", "Zachary", "Luca", "Frankie", "Jude", "Ellis", "Elliot", "Ollie", "Benjamin",
    "Ezra", "Jenson", "Kai", "Michael", "Finn", "Bobby", "Ibrahim", "Louis", "Stanley", "Harley", "Yusuf",
    "Tyler", "Ryan", "Liam", "Jayden", "Callum", "Kyle", "Connor", "Lewis", "Nathan", "Mohammed", "Aaron",
    "Owen", "Jake", "Luke", "Matthew", "Cameron", "Ben", "Sonny", "Jamie", "Arlo", "Ali", "Jakub", "Aarav",
)
_GIRLS = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia", "Grace", "Willow",
    "Freya", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte", "Evelyn", "Sienna", "Daisy",
    "Phoebe", "Sophie", "Ruby", "Harper", "Millie", "Matilda", "Isabelle", "Jessica", "Chloe", "Maya", "Hallie",
    "Layla", "Ellie", "Scarlett", "Emma", "Eva", "Erin", "Lucy", "Holly", "Zara", "Aria", "Esme", "Hannah",
    "Alice", "Molly", "Megan", "Lola", "Maisie", "Niamh", "Amber", "Ayesha", "Fatima", "Maryam", "Nancy", "Orla",
    "Thea", "Imogen", "Lacey", "Eliza", "Zoë", "Aisha", "Leah", "Abigail", "Georgia", "Katie", "Lexi", "Bella",
    "Hollie", "Summer", "Darcy", "Ada", "Mila", "Maddison", "Bethany", "Paige", "Caitlin", "Zainab", "Oliwia",
    "Anaya", "Amelie", "Maria",
)
# Common surnames in England that Faker's en_GB list lacks; a tenth of families draw from these.
_MORE_FAMILY_NAMES = (
    "Khan", "Ali", "Hussain", "Ahmed", "Patel", "Begum", "Akhtar", "Mahmood", "Singh", "Kaur", "Sharma", "Nowak",
    "Kowalski", "Wiśniewski", "Okafor", "Mensah", "Adeyemi", "Nguyen", "Chen", "McCarthy", "Murphy", "Gallagher",
)
_PLACES = (
    "Ashcombe", "Brackenby", "Carrowfield", "Dunmoor", "Edgerley", "Fellside", "Gorsebrook", "Hollinwell",
    "Kestrel Vale", "Lindenholt", "Marrowby", "Netherfold", "Oakhurst", "Pennwick", "Quarrydale", "Rookley",
    "Saltmere", "Thornwick", "Underfell", "Wyndhamstow", "Yarrowby", "Bramblecote", "Coldwater", "Harrowden",
)
_PLACE_STEMS = ("Ash", "Brack", "Carr", "Dun", "Eld", "Fell", "Gorse", "Holl", "Kes", "Lind", "Marr", "Neth", "Oak",
                "Penn", "Quarr", "Rook", "Salt", "Thorn", "Under", "Wynd", "Yarr", "Brad", "Cold", "Harr")
_PLACE_ENDINGS = ("combe", "by", "field", "moor", "ley", "side", "brook", "well", "holt", "fold", "hurst", "wick",
                  "dale", "mere", "stow", "ton", "ford", "ham")
_SAINTS = ("Mary", "Peter", "John", "Anne", "Michael", "Joseph", "Bede", "Hilda", "Aidan", "Cuthbert")


# --- identifiers --------------------------------------------------------------------------------------


def nhs_check_digit_valid(nhs_number: str) -> bool:
    """The NHS number's modulus-11 check (the matcher's own rule)."""
    return nhs_number_valid(nhs_number)


def make_nhs_number(rng: random.Random) -> str:
    """A valid NHS number in the 999 range, which NHS England reserves for testing."""
    while True:
        body = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return body + str(check)


def upn_check_letter(body: str) -> str:
    """The DfE check letter for the 12 characters after it: weights 2..13, sum mod 23, A-Z without I, O, S.

    A letter in the last place (a temporary UPN) counts as its position in the same alphabet.
    """
    if len(body) != 12:
        raise ValueError("a UPN body has 12 characters")
    total = 0
    for weight, ch in enumerate(body, start=2):
        total += weight * (int(ch) if ch.isdigit() else _UPN_LETTERS.index(ch))
    return _UPN_LETTERS[total % 23]


def upn_valid(upn: str) -> bool:
    if len(upn) != 13 or not upn[1:12].isdigit() or not (upn[12].isdigit() or upn[12] in _UPN_LETTERS):
        return False
    return upn[0] == upn_check_letter(upn[1:])


# --- helpers ------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """Lower-case letters and digits joined by single hyphens (apostrophes dropped)."""
    words = "".join(ch if ch.isalnum() else " " for ch in text.lower().replace("'", "")).split()
    return "-".join(words)


def _email_part(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isascii() and ch.isalpha())


def _first_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _academic_year(day: date) -> int:
    return day.year if day.month >= 9 else day.year - 1


def _birth_window(year_group: int) -> tuple[date, date]:
    """Children in national curriculum year ``year_group`` (0 is reception) in the academic year of AS_OF.

    Born 2 September to 31 August, so that the age on AS_OF (1 September) is exactly 4 + year group.
    """
    first = _academic_year(AS_OF) - 5 - year_group
    return date(first, 9, 2), date(first + 1, 8, 31)


def _random_day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange((end - start).days + 1))


class _Phones:
    """Distinct numbers from the drama range 07700 900000-900999, in a seeded order."""

    def __init__(self, rng: random.Random) -> None:
        self._order = rng.sample(range(1000), 1000)
        self._next = 0

    def take(self) -> str:
        number = self._order[self._next % 1000]
        self._next += 1
        return f"+447700900{number:03d}"


@dataclass
class _School:
    row: Row
    phase: str  # primary | secondary | all-through
    years: tuple[int, ...]
    estab: str  # the DfE establishment number (the 4 digits after the LA code in a UPN)
    size: int  # pupils per year group, relative

    @property
    def urn(self) -> str:
        return self.row["urn"]


# --- the generator ------------------------------------------------------------------------------------


class _Generator:
    def __init__(self, seed: int, pupils: int) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("en_GB")
        self.fake.seed_instance(seed)
        self.target = max(0, pupils)
        self.phones = _Phones(self.rng)
        self.nhs_used: set[str] = set()
        self.upn_serials: dict[str, int] = {}
        self.identities: set[tuple[str, str, str]] = set()
        self.emails: set[str] = set()

    # identities

    def nhs(self) -> str:
        number = make_nhs_number(self.rng)
        while number in self.nhs_used:
            number = make_nhs_number(self.rng)
        self.nhs_used.add(number)
        return number

    def family_name(self) -> str:
        if self.rng.random() < 0.1:
            return str(self.fake.random_element(_MORE_FAMILY_NAMES))
        family = str(self.fake.last_name())
        if self.rng.random() < 0.02:  # double-barrelled
            family = f"{family}-{self.fake.last_name()}"
        return family

    def given_name(self, sex: str, avoid: set[str]) -> str:
        pool = _BOYS if sex == "M" else _GIRLS if sex == "F" else _BOYS + _GIRLS
        name = str(self.fake.random_element(pool))
        while name in avoid:
            name = str(self.fake.random_element(pool))
        return name

    def sex(self) -> str:
        roll = self.rng.random()
        return "U" if roll < 0.006 else "M" if roll < 0.503 else "F"

    def postcode(self, outside: bool = False) -> str:
        outward = self.rng.choice(OUTSIDE_DISTRICTS if outside else DISTRICTS)
        inward = f"{self.rng.randrange(1, 10)}{self.rng.choice(_INWARD_LETTERS)}{self.rng.choice(_INWARD_LETTERS)}"
        return f"{outward} {inward}"

    def staff_email(self) -> str:
        while True:
            email = f"{_email_part(self.fake.first_name())}.{_email_part(self.fake.last_name())}@{GOV_DOMAIN}"
            if email not in self.emails:
                self.emails.add(email)
                return email

    # schools

    def schools(self) -> list[_School]:
        count = max(5, round(self.target / 165))
        in_area = count - 2
        secondaries = max(1, round(in_area / 3.5))
        primaries = in_area - secondaries
        estabs = iter(self.rng.sample(range(2000, 3000), primaries) + self.rng.sample(range(4000, 5000), secondaries))
        names: set[str] = set()
        urn = 100000 + self.rng.randrange(100, 900)
        made: list[_School] = []

        places = self.rng.sample(_PLACES, len(_PLACES))

        def place() -> str:
            return places.pop() if places else self.rng.choice(_PLACE_STEMS) + self.rng.choice(_PLACE_ENDINGS)

        def school_name(templates: tuple[str, ...]) -> str:
            for attempt in range(10_000):
                name = self.rng.choice(templates).format(place=place(), saint=self.rng.choice(_SAINTS))
                if attempt >= 100:  # only for absurd sizes: a number keeps names (and email domains) distinct
                    name = f"{name} {attempt}"
                if name not in names:
                    break
            names.add(name)
            return name

        def add(name: str, la_code: str, school_type: str, phase: str, years: range, estab: str, size: int,
                contacts: str = "full") -> None:
            nonlocal urn
            urn += self.rng.randrange(1, 400)
            domain = f"{_slug(name)}.sch.example"
            row = {"urn": str(urn), "name": name, "la_code": la_code, "in_area": "true" if la_code == DEMO_LA_CODE
                   else "false", "school_type": school_type, "dsl_email": f"dsl@{domain}",
                   "dsl_phone": "" if contacts == "no-dsl-phone" else self.phones.take(),
                   "deputy_email": "" if contacts == "no-deputy" else f"deputy.dsl@{domain}",
                   "deputy_phone": "" if contacts == "no-deputy" else self.phones.take()}
            made.append(_School(row, phase, tuple(years), estab, size))

        primary_names = ("{place} Primary School", "{place} Primary School", "{place} C of E Primary School",
                         "St {saint}'s RC Primary School", "{place} Community Primary School",
                         "{place} Infant and Junior School")
        secondary_names = ("{place} Academy", "{place} High School", "{place} School", "{place} Community College")
        # The first (lowest URN) in-area state school has every contact: the demo logs in as its DSL.
        for index in range(primaries):
            contacts = "no-deputy" if index == 1 else "full"
            add(school_name(primary_names), DEMO_LA_CODE, "STATE", "primary", range(0, 7), f"{next(estabs)}",
                self.rng.choice((30, 30, 45, 60, 60, 90)), contacts)
        for index in range(secondaries):
            contacts = "no-dsl-phone" if index == 0 else "full"
            sixth_form = index % 2 == 0
            add(school_name(secondary_names), DEMO_LA_CODE, "STATE", "secondary",
                range(7, 14) if sixth_form else range(7, 12), f"{next(estabs)}", self.rng.choice((150, 180, 210)),
                contacts)
        add(school_name(("{place} House School", "{place} Hall School")), DEMO_LA_CODE, "INDEPENDENT",
            "all-through", range(0, 14), str(self.rng.randrange(6000, 7000)), 12)
        add(f"{self.rng.choice(('Eastmoor', 'Moorgate', 'Border'))} Academy", "888", "STATE", "secondary",
            range(7, 12), str(self.rng.randrange(4000, 5000)), 12)
        return made

    # pupils

    def upn(self, school: _School, year_group: int, feeders: list[_School]) -> str:
        """LA code and establishment of the school that first allocated it, the year, and a serial."""
        entered_reception = _academic_year(AS_OF) - year_group
        if school.phase == "secondary" and year_group >= 7:
            if self.rng.random() < 0.85 and feeders:
                prefix = DEMO_LA_CODE + self.rng.choice(feeders).estab
            else:  # came from another council's primary
                prefix = self.rng.choice(tuple(OTHER_LAS)) + str(self.rng.randrange(2000, 3000))
        else:
            prefix = school.row["la_code"] + school.estab
        prefix += f"{entered_reception % 100:02d}"
        serial = self.upn_serials.get(prefix, 0) + 1
        while serial > 999:  # that school and year are full: another establishment's prefix
            prefix = DEMO_LA_CODE + str(self.rng.randrange(2000, 3000)) + prefix[-2:]
            serial = self.upn_serials.get(prefix, 0) + 1
        self.upn_serials[prefix] = serial
        body = f"{prefix}{serial:03d}"
        return upn_check_letter(body) + body

    def pupils(self, schools: list[_School]) -> list[Row]:
        slots = [(school, year, school.size * (0.45 if year >= 12 else 1.0)) for school in schools
                 for year in school.years]
        cumulative: list[float] = []
        running = 0.0
        for _, _, weight in slots:
            running += weight
            cumulative.append(running)
        local = [s for s in schools if s.row["in_area"] == "true" and s.row["school_type"] == "STATE"]
        feeders = [s for s in local if s.phase == "primary"]
        rows: list[Row] = []
        household = 0
        while len(rows) < self.target:
            school, year, _ = self.rng.choices(slots, cum_weights=cumulative)[0]
            family = self.family_name()
            postcode = self.postcode(outside=self.rng.random() < 0.03)
            moved_away = year > 0 and self.rng.random() < 0.04
            roll = self.rng.random()
            members: list[tuple[_School, int, date | None]] = [(school, year, None)]
            if household in (1, 5) or roll < 0.012:  # twins: same birthday, school and address
                members.append((school, year, _random_day(self.rng, *_birth_window(year))))
                members[0] = (school, year, members[1][2])
            elif roll < 0.09:  # siblings in other year groups, at this school if it has their year
                for _ in range(1 if self.rng.random() < 0.75 else 2):
                    taken = {m[1] for m in members}
                    other = self.rng.choice([y for y in range(0, 12) if y not in taken and abs(y - year) <= 6])
                    if other in school.years:
                        members.append((school, other, None))
                    else:
                        options = [s for s in local if other in s.years]
                        if options:
                            members.append((self.rng.choice(options), other, None))
            household += 1
            given: set[str] = set()
            for member_school, member_year, born in members:
                if len(rows) >= self.target:
                    break
                rows.append(self.pupil(member_school, member_year, born, family, postcode, given, feeders,
                                       moved_away))
        return sorted(rows, key=lambda r: (r["school_urn"], r["family_name"], r["given_name"], r["upn"]))

    def pupil(self, school: _School, year: int, born: date | None, family: str, postcode: str, given: set[str],
              feeders: list[_School], moved_away: bool) -> Row:
        sex = self.sex()
        if born is None:
            born = _random_day(self.rng, *_birth_window(year))
        name = self.given_name(sex, given)
        while (name, family, born.isoformat()) in self.identities:
            name = self.given_name(sex, given)
        given.add(name)
        self.identities.add((name, family, born.isoformat()))
        first_year = school.years[0] if year >= school.years[0] else year
        if year >= 12 and school.years[0] == 7 and self.rng.random() < 0.25:
            first_year = 12  # joined for the sixth form
        joined = min(_first_weekday(date(_academic_year(AS_OF) - (year - first_year), 9, 1)), AS_OF)
        summer_term_end = date(_academic_year(AS_OF), 7, 22)
        if joined < summer_term_end - timedelta(days=60) and self.rng.random() < 0.12:  # an in-year admission
            joined = _first_weekday(_random_day(self.rng, joined, summer_term_end - timedelta(days=60)))
        left = ""
        if moved_away and joined < AS_OF - timedelta(days=30):
            left_on = summer_term_end if self.rng.random() < 0.5 else _random_day(
                self.rng, joined + timedelta(days=20), AS_OF - timedelta(days=1))
            left = max(left_on, joined + timedelta(days=1)).isoformat()
        return {"upn": self.upn(school, year, feeders), "nhs_number": self.nhs() if self.rng.random() < 0.1 else "",
                "given_name": name, "family_name": family, "date_of_birth": born.isoformat(), "sex": sex,
                "postcode": postcode, "school_urn": school.urn, "on_roll_from": joined.isoformat(),
                "on_roll_to": left}

    # elective home education

    def ehe(self) -> list[Row]:
        rows: list[Row] = []
        for index in range(max(5, round(self.target / 100))):
            year = self.rng.randrange(1, 12)  # of compulsory school age
            born = _random_day(self.rng, *_birth_window(year))
            family = self.family_name()
            name = self.given_name(self.rng.choice("MF"), set())
            while (name, family, born.isoformat()) in self.identities:
                name = self.given_name(self.rng.choice("MF"), set())
            self.identities.add((name, family, born.isoformat()))
            rows.append({"given_name": name, "family_name": family, "date_of_birth": born.isoformat(),
                         "postcode": self.postcode(),
                         "nhs_number": self.nhs() if index == 0 or self.rng.random() < 0.3 else ""})
        return sorted(rows, key=lambda r: (r["family_name"], r["given_name"], r["date_of_birth"]))

    # social care

    def involvements(self, pupils: list[Row], ehe: list[Row]) -> list[Row]:
        teams = {team: [self.staff_email() for _ in range(size)]
                 for team, size in zip(CASE_TEAMS, (3, 3, 2, 1, 2), strict=True)}
        managers = {team: self.staff_email() for team in CASE_TEAMS}
        iros = [self.staff_email() for _ in range(2)]
        rows: list[Row] = []

        def open_case(child: Row, upn: str, nhs: str, status: str, team: str, worker: str, placing: str) -> None:
            rows.append({"nhs_number": nhs, "upn": upn, "given_name": child["given_name"],
                         "family_name": child["family_name"], "date_of_birth": child["date_of_birth"],
                         "status": status, "worker_email": worker, "team": team, "manager_email": managers[team],
                         "placing_la": placing,
                         "iro_email": self.rng.choice(iros) if status == "CHILD_LOOKED_AFTER" else ""})

        def allocate(child: Row, status: str) -> tuple[str, str, str]:
            age = (AS_OF - date.fromisoformat(child["date_of_birth"])).days // 365
            if status == "CHILD_LOOKED_AFTER":
                team = "CLA_TEAM"
            elif status in ("EARLY_HELP", "CHILD_IN_NEED") and age >= 10 and self.rng.random() < 0.2:
                team = "YOUTH_JUSTICE"
            elif status == "EARLY_HELP":
                team = "EARLY_HELP"
            else:
                team = "CSC_SOUTH" if child["postcode"].split()[0] in SOUTH_DISTRICTS else "CSC_NORTH"
            placing = ""
            if status == "CHILD_LOOKED_AFTER" and self.rng.random() < 0.3:
                placing = self.rng.choice(tuple(OTHER_LAS))
            return team, self.rng.choice(teams[team]), placing

        def pupil_nhs(child: Row) -> str:
            if child["nhs_number"]:
                return child["nhs_number"] if self.rng.random() < 0.9 else ""
            return self.nhs() if self.rng.random() < 0.25 else ""  # known to health and social care, not the school

        households: dict[tuple[str, str], list[Row]] = {}
        for pupil in pupils:
            households.setdefault((pupil["family_name"], pupil["postcode"]), []).append(pupil)
        current = [p for p in pupils if not p["on_roll_to"]]
        wanted = round(len(pupils) * 0.08)
        opened: set[str] = set()
        candidates = self.rng.sample(current, len(current))
        for number, child in enumerate(candidates):
            if len(opened) >= wanted:
                break
            if child["upn"] in opened:
                continue
            # the first four cover every status; then the usual mix
            status = STATUSES[number] if number < 4 else self.rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
            team, worker, placing = allocate(child, status)
            family = [child] + [s for s in households[(child["family_name"], child["postcode"])]
                                if s is not child and not s["on_roll_to"] and s["upn"] not in opened
                                and self.rng.random() < 0.7]
            for member in family:  # brothers and sisters are usually worked with together
                opened.add(member["upn"])
                open_case(member, member["upn"] if self.rng.random() < 0.55 else "", pupil_nhs(member), status,
                          team, worker, placing)
        for child in ehe[: max(1, len(ehe) // 4)]:
            status = self.rng.choice(STATUSES[:2])
            team, worker, placing = allocate(child, status)
            open_case(child, "", child["nhs_number"], status, team, worker, placing)
        for index in range(max(4, round(self.target / 250))):  # on no roll: pre-school, 16-17, moved in
            year = self.rng.choice((-3, -2, -1, 12, 13, 8, 9, 10))
            born = _random_day(self.rng, *_birth_window(year))
            sex = self.sex()
            child = {"given_name": self.given_name(sex, set()), "family_name": self.family_name(),
                     "date_of_birth": born.isoformat(), "postcode": self.postcode()}
            status = STATUSES[index % 4] if index < 4 else self.rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
            team, worker, placing = allocate(child, status)
            open_case(child, "", self.nhs() if self.rng.random() < 0.6 else "", status, team, worker, placing)
        rows.sort(key=lambda r: (r["team"], r["worker_email"], r["family_name"], r["given_name"], r["date_of_birth"]))
        return rows

    # teams

    def teams(self) -> list[Row]:
        rows = []
        for code in TEAM_CODES + CASE_TEAMS:
            if code.startswith("LA_"):
                email = f"childrens.front.door@{OTHER_LAS[code[3:]]}.gov.example"
            else:
                email = f"{code.lower().replace('_', '-')}@{GOV_DOMAIN}"
            rows.append({"team": code, "email": email, "phone": self.phones.take()})
        return rows

    def run(self) -> dict[str, list[Row]]:
        schools = self.schools()
        pupils = self.pupils(schools)
        ehe = self.ehe()
        return {"schools": [s.row for s in schools], "pupils": pupils, "ehe": ehe,
                "involvements": self.involvements(pupils, ehe),
                "teams": self.teams()}


def generate(seed: int = 1, pupils: int = 2000) -> dict[str, list[Row]]:
    """Rows for each kind (every value a string, "" when absent); the same arguments give the same rows."""
    return _Generator(seed, pupils).run()


def csv_text(kind: str, rows: list[Row]) -> str:
    """The rows of ``kind`` as the contract's CSV (its header, LF line endings)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS[kind]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csvs(out_dir: Path, seed: int = 1, pupils: int = 2000) -> dict[str, Path]:
    """Write ``<kind>.csv`` for each kind into ``out_dir`` (UTF-8, LF line endings, the contract's headers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for kind, rows in generate(seed, pupils).items():
        path = out_dir / f"{kind}.csv"
        path.write_text(csv_text(kind, rows), encoding="utf-8", newline="")
        written[kind] = path
    return written
