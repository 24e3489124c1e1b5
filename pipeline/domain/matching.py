"""Matching a child in an event to the reference data (school roll, home-education register, involvements).

Pure: the store supplies the candidate records (blocked on NHS number, date of birth and family name)
and the rules decide. The first version is deterministic: the NHS number rule of domain.md, then
normalised names with date of birth, with postcode, sex and stated school as supporting evidence. Every
decision carries its score breakdown so a person can see why. ``Matcher`` is the one interface; a
probabilistic matcher can replace ``DeterministicMatcher`` without touching the handlers.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from rapidfuzz.distance import JaroWinkler

from pipeline.domain.model import Candidate, Identity, MatchDecision, MatchOutcome

# A few common English nickname groups; the probabilistic matcher will bring a fuller list.
_NICKNAME_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "alexander alex alec sandy",
        "alexandra alex lexi sandra",
        "benjamin ben benny",
        "charlotte charlie lottie",
        "christopher chris kit",
        "daniel dan danny",
        "elizabeth liz lizzie beth betty eliza",
        "james jim jamie jimmy",
        "jessica jess jessie",
        "joseph joe joey",
        "katherine kate katie kathryn catherine cath",
        "matthew matt",
        "michael mike mikey mick",
        "nicholas nick nicky",
        "oliver ollie olly",
        "rebecca becky becca",
        "robert rob bob bobby robbie",
        "samuel sam sammy",
        "samantha sam sammie",
        "thomas tom tommy",
        "william will bill billy liam",
        "edward ed eddie ted ned",
        "jacob jake",
        "abigail abbie abby",
        "amelia millie",
        "isabella izzy bella isabelle",
        "margaret maggie meg peggy",
        "harry henry hal",
        "frederick fred freddie",
        "anthony tony",
    )
)


def nhs_number_valid(value: str | None) -> bool:
    """The NHS number's modulus-11 check digit (10 digits; a remainder giving 10 is never valid)."""
    if value is None:
        return False
    digits = value.replace(" ", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


@functools.lru_cache(maxsize=65536)  # pure, and called for every candidate of every event
def normalise_name(value: str | None) -> str:
    """Lower case, accents folded, only letters kept (O'Brien -> obrien, Zoë -> zoe)."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalpha())


def normalise_postcode(value: str | None) -> str:
    return "".join((value or "").upper().split())


def postcode_parts(value: str | None) -> tuple[str, str, str]:
    """(full, sector, district) of a UK postcode, e.g. NS12AB -> (NS12AB, NS1 2, NS1)."""
    full = normalise_postcode(value)
    if len(full) < 5:
        return full, "", ""
    outward, inward = full[:-3], full[-3:]
    return full, f"{outward} {inward[0]}", outward


def swapped_dates(value: date) -> set[date]:
    """The date itself and, where valid, its day/month swap."""
    dates = {value}
    if value.day <= 12:
        dates.add(value.replace(month=value.day, day=value.month))  # day <= 12 and month <= 12: always valid
    return dates


def _single_digit_apart(a: date, b: date) -> bool:
    left, right = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    return sum(x != y for x, y in zip(left, right, strict=True)) == 1


def _nicknames(a: str, b: str) -> bool:
    return any(a in group and b in group for group in _NICKNAME_GROUPS)


@dataclass(frozen=True)
class Thresholds:
    link: float = 9.0
    review: float = 6.0
    name_similarity: float = 0.9


def compare(event: Identity, candidate: Identity, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """Field-by-field agreement levels and weights for one candidate."""
    breakdown: dict[str, Any] = {}
    family_a, family_b = normalise_name(event.family_name), normalise_name(candidate.family_name)
    given_a, given_b = normalise_name(event.given_name), normalise_name(candidate.given_name)

    if family_a and family_a == family_b:
        breakdown["family_name"] = ("exact", 3.0)
    elif JaroWinkler.similarity(family_a, family_b) >= thresholds.name_similarity:
        breakdown["family_name"] = ("similar", 2.0)
    else:
        breakdown["family_name"] = ("different", -2.0)

    if given_a and given_a == given_b:
        breakdown["given_name"] = ("exact", 3.0)
    elif _nicknames(given_a, given_b):
        breakdown["given_name"] = ("nickname", 2.5)
    elif JaroWinkler.similarity(given_a, given_b) >= thresholds.name_similarity:
        breakdown["given_name"] = ("similar", 2.0)
    else:
        breakdown["given_name"] = ("different", -2.0)

    if event.date_of_birth is None or candidate.date_of_birth is None:
        breakdown["date_of_birth"] = ("absent", 0.0)
    elif event.date_of_birth == candidate.date_of_birth:
        breakdown["date_of_birth"] = ("exact", 4.0)
    elif candidate.date_of_birth in swapped_dates(event.date_of_birth):
        breakdown["date_of_birth"] = ("day_month_swap", 3.0)
    elif _single_digit_apart(event.date_of_birth, candidate.date_of_birth):
        breakdown["date_of_birth"] = ("one_digit", 1.0)
    else:
        breakdown["date_of_birth"] = ("different", -4.0)

    if event.postcode and candidate.postcode:
        a, b = postcode_parts(event.postcode), postcode_parts(candidate.postcode)
        if a[0] == b[0]:
            breakdown["postcode"] = ("full", 2.0)
        elif a[1] and a[1] == b[1]:
            breakdown["postcode"] = ("sector", 1.5)
        elif a[2] and a[2] == b[2]:
            breakdown["postcode"] = ("district", 0.5)
        else:
            breakdown["postcode"] = ("different", -0.5)

    if event.sex in ("M", "F") and candidate.sex in ("M", "F"):
        breakdown["sex"] = ("agree", 0.5) if event.sex == candidate.sex else ("different", -1.0)

    if event.school_name and candidate.school_name:
        similarity = JaroWinkler.similarity(event.school_name.lower(), candidate.school_name.lower())
        if similarity >= 0.85:
            breakdown["school"] = ("similar", 1.0)
    return breakdown


class Matcher(Protocol):
    """Decides which reference person, if any, an event's child is."""

    def decide(self, event: Identity, candidates: Sequence[Candidate], *, urgent: bool) -> MatchDecision: ...


def person_key(candidate: Candidate) -> str:
    """The key that joins records of one person across sources: UPN, else NHS number, else the record."""
    if candidate.upn:
        return f"upn:{candidate.upn}"
    if candidate.identity.nhs_number:
        return f"nhs:{candidate.identity.nhs_number}"
    return f"{candidate.source}:{candidate.record_key}"


def exact_identity(identity: Identity) -> tuple[str, str, date | None]:
    return normalise_name(identity.given_name), normalise_name(identity.family_name), identity.date_of_birth


def _merge_exact_identities(groups: dict[str, list[Candidate]]) -> None:
    """A social-care or home-education record with no UPN joins the one roll record whose names and date of
    birth are exactly its own (social care often records no UPN). Never on a near match, never when two roll
    records would qualify, and never across different NHS numbers: twins stay apart."""
    with_upn = {root: members for root, members in groups.items() if any(m.upn for m in members)}
    for root, members in list(groups.items()):
        if root in with_upn:
            continue
        identities = {exact_identity(m.identity) for m in members}
        numbers = {m.identity.nhs_number for m in members if m.identity.nhs_number}
        if len(identities) != 1:
            continue
        matches = [other for other, pupils in with_upn.items()
                   if {exact_identity(p.identity) for p in pupils} & identities
                   and not (numbers and {p.identity.nhs_number for p in pupils if p.identity.nhs_number} - numbers)]
        if len(matches) == 1:
            groups[matches[0]].extend(groups.pop(root))


def group_people(candidates: Iterable[Candidate]) -> dict[str, list[Candidate]]:
    """Group records of the same person (shared UPN or NHS number) under one person key."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    items = list(candidates)
    for candidate in items:
        keys = [person_key(candidate)]
        if candidate.upn and candidate.identity.nhs_number:
            keys.append(f"nhs:{candidate.identity.nhs_number}")
        for other in keys[1:]:
            parent[find(other)] = find(keys[0])
        find(keys[0])
    groups: dict[str, list[Candidate]] = {}
    for candidate in items:
        groups.setdefault(find(person_key(candidate)), []).append(candidate)
    _merge_exact_identities(groups)
    # Name each group by its most stable key: a UPN where there is one.
    named: dict[str, list[Candidate]] = {}
    for members in groups.values():
        keys = sorted({person_key(m) for m in members}, key=lambda k: (not k.startswith("upn:"), k))
        named[keys[0]] = members
    return named


class DeterministicMatcher:
    """The first matcher: NHS number rule, then names and date of birth, with a review band."""

    def __init__(self, thresholds: Thresholds = Thresholds()) -> None:
        self.thresholds = thresholds

    def decide(self, event: Identity, candidates: Sequence[Candidate], *, urgent: bool) -> MatchDecision:
        groups = group_people(candidates)
        linked: dict[str, dict[str, Any]] = {}
        review: dict[str, dict[str, Any]] = {}
        event_nhs_valid = nhs_number_valid(event.nhs_number)

        for key, members in groups.items():
            best: dict[str, Any] | None = None
            for member in members:
                result = self._score(event, member, event_nhs_valid)
                if best is None or (result["rank"], result["score"]) > (best["rank"], best["score"]):
                    best = result
            assert best is not None
            if best["rank"] == 2:
                linked[key] = best
            elif best["rank"] == 1:
                review[key] = best

        exact = [key for key, r in linked.items()
                 if r["fields"]["given_name"] == "exact" and r["fields"]["family_name"] == "exact"]
        if len(linked) + len(review) > 1 and len(exact) == 1:
            # One record agrees exactly and the others only on a similar given name (a twin or sibling):
            # the exact one is the child; the rest are not candidates for this event.
            linked = {exact[0]: linked[exact[0]]}
            review = {}
        if len(linked) == 1 and not review:
            key, best = next(iter(linked.items()))
            twin = self._twin_on_fuzzy_name(event, key, best, groups)
            if twin:
                return MatchDecision(
                    MatchOutcome.REVIEW, None, best["score"], self._summary(linked, review),
                    "a sibling shares the date of birth and address; fuzzy names are never linked",
                    urgent,
                )
            return MatchDecision(MatchOutcome.LINKED, key, best["score"], self._summary(linked, review),
                                 best["reason"], urgent)
        if linked or review:
            top = max((*linked.values(), *review.values()), key=lambda r: r["score"])
            reason = "several candidates" if len(linked) + len(review) > 1 else top["reason"]
            return MatchDecision(MatchOutcome.REVIEW, None, top["score"], self._summary(linked, review),
                                 reason, urgent)
        return MatchDecision(MatchOutcome.NO_MATCH, None, 0.0, {"candidates": len(groups)},
                             "no candidate record", urgent)

    def _score(self, event: Identity, candidate: Candidate, event_nhs_valid: bool) -> dict[str, Any]:
        """rank 2 = link, 1 = review, 0 = not this person."""
        breakdown = compare(event, candidate.identity, self.thresholds)
        score = sum(weight for _, weight in breakdown.values())
        fields = {name: level for name, (level, _) in breakdown.items()}
        result: dict[str, Any] = {"score": round(score, 2), "fields": fields, "source": candidate.source}
        if event_nhs_valid and candidate.identity.nhs_number == event.nhs_number:
            dob_agrees = fields["date_of_birth"] in ("exact", "day_month_swap")
            family_agrees = fields["family_name"] == "exact"
            if dob_agrees or family_agrees:
                return {**result, "rank": 2, "rule": "nhs_number", "reason": "NHS number and identity agree"}
            return {**result, "rank": 1, "rule": "nhs_number_conflict",
                    "reason": "NHS number equal but date of birth and family name disagree"}
        names_agree = fields["family_name"] != "different" and fields["given_name"] != "different"
        dob_agrees = fields["date_of_birth"] in ("exact", "day_month_swap")
        if names_agree and dob_agrees and score >= self.thresholds.link:
            return {**result, "rank": 2, "rule": "names_and_birth_date", "reason": "names and date of birth agree"}
        if score >= self.thresholds.review:
            return {**result, "rank": 1, "rule": "partial", "reason": "partial agreement"}
        return {**result, "rank": 0, "rule": "none", "reason": "no agreement"}

    @staticmethod
    def _twin_on_fuzzy_name(event: Identity, key: str, best: dict[str, Any],
                            groups: dict[str, list[Candidate]]) -> bool:
        if best.get("rule") == "nhs_number" or best["fields"].get("given_name") == "exact":
            return False
        mine = groups[key][0].identity
        household = (mine.date_of_birth, normalise_postcode(mine.postcode))
        return any(
            (m.identity.date_of_birth, normalise_postcode(m.identity.postcode)) == household
            for other, members in groups.items() if other != key for m in members
        )

    @staticmethod
    def _summary(linked: dict[str, dict[str, Any]], review: dict[str, dict[str, Any]]) -> dict[str, Any]:
        # Keys name people by UPN or NHS number: keep them out of the breakdown shown to managers.
        return {
            "candidates": [
                {"band": band, "score": r["score"], "rule": r["rule"], "source": r["source"], "fields": r["fields"]}
                for band, results in (("link", linked), ("review", review)) for r in results.values()
            ]
        }
