"""The reference data's part of the storage port (pipeline/ports/reference_data.py): loading reference files and
storing the matcher's parameters. The in-memory fake, SQLite and PostgreSQL give the same answers, through the
port's methods and through the loader and the trainer that use them (one test per behaviour, on each backend)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest

from pipeline.adapters.match_index import ReferenceIndex
from pipeline.domain.fellegi_sunter import Parameters
from pipeline.domain.model import Contact, Identity
from pipeline.service.handlers import Context
from pipeline.service.match_training import train_stored
from pipeline.service.reference import LoadReport, ReferenceError, load, parse_csv
from pipeline.settings import Settings
from tests.support.store_ports import Backend
from tests.support.world import AMELIA, EHE, INVOLVEMENTS, JACOB, OLIVER, PUPILS, REFERENCE, SCHOOLS, TEAMS, attendance

NOW = datetime.fromisoformat("2026-11-24T20:00:00+00:00")
HARVEY = Identity(given_name="Harvey", family_name="Lindqvist", date_of_birth=date(2012, 10, 10))  # on the EHE list
MIA = Identity(given_name="Mia", family_name="Thornton", date_of_birth=date(2013, 3, 3))
EHE_HEADER = EHE.splitlines()[0] + "\n"
MIA_EHE = "Mia,Thornton,2013-03-03,NS1 2AB,\n"


def _without(text: str, prefix: str) -> str:
    """The file without its line that starts with ``prefix``."""
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith(prefix))


def _ehe_keys(index: ReferenceIndex, identity: Identity) -> list[str]:
    return [c.record_key for c in index.candidates(identity) if c.source == "ehe"]


# ---- reference loads ------------------------------------------------------------------------------------

def test_a_file_is_loaded_and_its_rows_are_current(store_backend: Backend) -> None:
    newtown = "100006,New Town Primary,999,true,STATE,dsl@newtown.sch.example,,,\n"
    with store_backend.units.unit_of_work() as port:
        assert not port.school_ever_loaded("100006")
        assert load(port, "schools", SCHOOLS + newtown, NOW) == LoadReport("schools", 6, 0)
    with store_backend.units.unit_of_work() as port:
        school = port.school("100006")
        assert school is not None and (school.name, school.in_area, school.dsl) == (
            "New Town Primary", True, Contact("dsl@newtown.sch.example", None))
        assert port.school_ever_loaded("100006")


def test_upsert_names_new_changed_and_unended_rows_and_end_vanished_rows_names_the_rows_ended(
        store_backend: Backend) -> None:
    reloaded = _without(TEAMS, "LA_888").replace("cme@northshire", "cme.duty@northshire") + \
        "NEW_TEAM,new.team@northshire.gov.example,\n"
    with store_backend.units.unit_of_work() as port:
        items = parse_csv("teams", reloaded, port)
        assert port.upsert_current_rows("teams", items) == ["CME", "NEW_TEAM"]  # in the file's order
        keys = {item["team"] for item in items}
        assert port.end_vanished_rows("teams", keys, NOW) == ["LA_888"]
        assert port.end_vanished_rows("teams", keys, NOW + timedelta(hours=1)) == []  # ended once only
        port.log_reference_changes("teams", ["CME", "NEW_TEAM", "LA_888"], NOW)
    with store_backend.units.unit_of_work() as port:
        directory = port.directory()
        assert directory.team("CME") == Contact("cme.duty@northshire.gov.example", None)
        assert directory.team("NEW_TEAM") == Contact("new.team@northshire.gov.example", None)
        assert directory.team("LA_888") is None
        assert directory.team("SCIES") == Contact("scies@northshire.gov.example", "+447700900100")  # as it was
        # The same rows again change nothing; a row that had ended comes back as a change, unchanged or not.
        assert port.upsert_current_rows("teams", items) == []
        assert port.upsert_current_rows("teams", parse_csv("teams", TEAMS, port)) == ["CME", "LA_888"]
        port.log_reference_changes("teams", ["CME", "LA_888"], NOW)
    with store_backend.units.unit_of_work() as port:
        assert port.directory().team("LA_888") == Contact("la888@otherplace.gov.example", None)


def test_a_reload_ends_vanished_rows_and_a_synced_match_index_applies_it(store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    harvey = _ehe_keys(index, HARVEY)
    assert len(harvey) == 1 and _ehe_keys(index, MIA) == []
    with store_backend.units.unit_of_work() as port:
        assert load(port, "ehe", EHE_HEADER + MIA_EHE, NOW) == LoadReport("ehe", 1, 1)
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    assert _ehe_keys(index, HARVEY) == []
    assert len(_ehe_keys(index, MIA)) == 1
    with store_backend.units.unit_of_work() as port:  # back again: the same key as before, un-ended
        assert load(port, "ehe", EHE, NOW) == LoadReport("ehe", 1, 1)
        port.sync_match_index(index)
    assert _ehe_keys(index, HARVEY) == harvey and _ehe_keys(index, MIA) == []


def test_logged_changes_reach_a_match_index_synced_before_them(store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    before = index.seq
    with store_backend.units.unit_of_work() as port:
        changed = port.upsert_current_rows("ehe", parse_csv("ehe", EHE + MIA_EHE, port))
        assert len(changed) == 1
        port.log_reference_changes("ehe", changed, NOW)
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    assert _ehe_keys(index, MIA) == changed
    assert index.seq > before


def test_a_unit_of_work_that_loads_sees_its_own_load_after_reading_the_reference_data(
        store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        riverside = port.school("100001")
        assert riverside is not None and riverside.name == "Riverside Primary School"
        assert load(port, "ehe", EHE_HEADER + MIA_EHE, NOW) == LoadReport("ehe", 1, 1)
        renamed = SCHOOLS.replace("Riverside Primary School", "Riverside Primary Academy")
        assert load(port, "schools", renamed, NOW) == LoadReport("schools", len(SCHOOLS.splitlines()) - 1, 0)
        port.sync_match_index(index)  # synced before the load, in this unit of work: the load is applied
        assert _ehe_keys(index, HARVEY) == [] and len(_ehe_keys(index, MIA)) == 1
        riverside = port.school("100001")
        assert riverside is not None and riverside.name == "Riverside Primary Academy"


def test_current_keys_are_the_rows_not_ended(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        enrolments = [line.split(",") for line in PUPILS.splitlines()[1:]]
        assert port.current_keys("pupils") == {f"{row[0]}|{row[7]}|{row[8]}" for row in enrolments}
        assert "100004" in port.current_keys("schools") and "FRONT_DOOR" in port.current_keys("teams")
        ehe = port.current_keys("ehe")
        assert len(ehe) == len(EHE.splitlines()) - 1
        load(port, "ehe", EHE_HEADER + MIA_EHE, NOW)
        now_current = port.current_keys("ehe")
        assert len(now_current) == 1 and not now_current & ehe


def test_pupils_on_roll_count_the_current_pupils_on_the_roll_that_day(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        # Riverside (100001): five pupils on file, one of whom (Freya) left in July 2024.
        assert port.pupils_on_roll(["100001", "100002", "999999"], date(2026, 11, 24)) == {"100001": 4, "100002": 1}
    # Oliver re-admitted at Hilltop with his first row never closed: two rows, one pupil.
    readmitted = OLIVER_AT_RIVERSIDE.replace("100001,2026-09-01", "100002,2026-11-23")
    store_backend.load_reference("pupils", PUPILS + readmitted)
    with store_backend.units.unit_of_work() as port:
        assert port.pupils_on_roll(["100002"], date(2026, 11, 24)) == {"100002": 1}
        assert port.pupils_on_roll(["100001"], date(2024, 7, 19)) == {"100001": 5}  # her last day
        assert port.pupils_on_roll(["100002"], date(2022, 8, 31)) == {}  # before Oliver joined
        assert port.pupils_on_roll([], date(2026, 11, 24)) == {}
        load(port, "pupils", _without(PUPILS, "B999100100002"), NOW)  # Oliver's row ended
        assert port.pupils_on_roll(["100002"], date(2026, 11, 24)) == {}


def test_involvement_routes_are_the_current_involvements_teams_and_placing_councils(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        assert port.involvement_routes() == ({"CLA_TEAM", "EARLY_HELP"}, {"888"})
        load(port, "involvements", _without(INVOLVEMENTS, ",G999100100008,"), NOW)  # Jacob's (CLA, placed) ended
        assert port.involvement_routes() == ({"EARLY_HELP"}, set())


def test_loading_the_same_files_again_changes_nothing(store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    version = index.seq
    for kind, text in REFERENCE.items():
        with store_backend.units.unit_of_work() as port:
            report = load(port, kind, text, NOW)
        assert report.ended == 0
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    assert index.seq == version  # nothing logged: no process has anything to apply


def test_a_school_ever_loaded_includes_an_ended_one_and_a_pupil_may_name_only_those(store_backend: Backend) -> None:
    store_backend.load_reference("schools", _without(SCHOOLS, "100005"))
    with store_backend.units.unit_of_work() as port:
        assert port.school("100005") is None and port.school_ever_loaded("100005")
        assert port.school_ever_loaded("100001") and not port.school_ever_loaded("999999")
        # Ruby's school (100005) has ended but was loaded: her row is accepted.
        assert load(port, "pupils", PUPILS, NOW) == LoadReport("pupils", 9, 0)
    with pytest.raises(ReferenceError) as refused, store_backend.units.unit_of_work() as port:
        load(port, "pupils", PUPILS + "Z999100100010,,Zara,Quill,2014-02-02,F,NS1 2AB,999999,,\n", NOW)
    assert refused.value.problems == ["row 11: school_urn: no such school loaded"]


def test_a_refused_file_loads_nothing(store_backend: Backend) -> None:
    index = ReferenceIndex()
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
    version = index.seq
    with pytest.raises(ReferenceError) as refused, store_backend.units.unit_of_work() as port:
        load(port, "teams", _without(TEAMS, "SCIES"), NOW, required_teams=("SCIES", "CME"))
    assert refused.value.problems == ["teams the rules route to have no row: SCIES"]
    with pytest.raises(ReferenceError), store_backend.units.unit_of_work() as port:
        load(port, "ehe", EHE_HEADER + MIA_EHE + "Nobody,,not-a-date,,\n", NOW)
    with store_backend.units.unit_of_work() as port:
        assert port.directory().team("SCIES") == Contact("scies@northshire.gov.example", "+447700900100")
        port.sync_match_index(index)
    assert index.seq == version and _ehe_keys(index, MIA) == [] and len(_ehe_keys(index, HARVEY)) == 1


# ---- match training -------------------------------------------------------------------------------------

def _missing_reported(child: dict[str, object]) -> dict[str, object]:
    return {"event_id": str(uuid.uuid4()), "episode_id": "EP-1", "force_code": "NS01", "reported_at": NOW.isoformat(),
            "last_seen_at": (NOW - timedelta(hours=2)).isoformat(), "child": dict(child), "risk_grade": "MEDIUM",
            "missing_from": "CARE", "exploitation_flags": []}


def _missing_found() -> dict[str, object]:
    return {"event_id": str(uuid.uuid4()), "episode_id": "EP-1", "found_at": NOW.isoformat(),
            "returned_to": "PLACEMENT", "safe_and_well_at": None}


def test_recent_event_children_newest_first_from_the_events_that_name_one(store_backend: Backend) -> None:
    store_backend.add_event("self-harm-attendance", attendance(AMELIA), NOW)
    store_backend.add_event("missing-reported", _missing_reported(OLIVER), NOW)
    store_backend.add_event("missing-found", _missing_found(), NOW)  # names no child
    store_backend.add_event("self-harm-attendance", attendance(JACOB), NOW)
    with store_backend.units.unit_of_work() as port:
        children = port.recent_event_children(10)
        assert [(c.given_name, c.family_name, c.date_of_birth, c.nhs_number) for c in children] == [
            ("Jacob", "Merriman", date(2011, 6, 6), None), ("Oliver", "Brennan", date(2011, 2, 3), None),
            ("Amelia", "Hartley", date(2013, 5, 14), "9990000018")]
        assert [c.given_name for c in port.recent_event_children(2)] == ["Jacob", "Oliver"]


def test_saved_match_parameters_are_read_back_newest_first(store_backend: Backend) -> None:
    older, newer = Parameters(share_known=0.8), Parameters(share_known=0.7)
    with store_backend.units.unit_of_work() as port:
        assert port.save_match_parameters(older, NOW) == older.version
    with store_backend.units.unit_of_work() as port:
        assert port.save_match_parameters(newer, NOW + timedelta(minutes=1)) == newer.version
    with store_backend.units.unit_of_work() as port:
        found = port.newest_match_parameters(None)
        assert found is not None and (found.version, found.share_known) == (newer.version, 0.7)
    with store_backend.units.unit_of_work() as port:  # the same version saved again is the newest again
        assert port.save_match_parameters(older, NOW + timedelta(minutes=2)) == older.version
    with pytest.raises(RuntimeError), store_backend.units.unit_of_work() as port:
        port.save_match_parameters(Parameters(share_known=0.6), NOW + timedelta(minutes=3))
        raise RuntimeError("the unit of work fails")
    with store_backend.units.unit_of_work() as port:
        found = port.newest_match_parameters(None)
        assert found is not None and (found.version, found.share_known) == (older.version, 0.8)
        assert port.newest_match_parameters(older.version) is None


def test_parameters_saved_are_the_newest_in_the_unit_of_work_that_saved_them(store_backend: Backend) -> None:
    saved = Parameters(share_known=0.65)
    with store_backend.units.unit_of_work() as port:
        assert port.newest_match_parameters(None) is None  # none stored yet, read in this unit of work
        port.save_match_parameters(saved, NOW)
        found = port.newest_match_parameters(None)
        assert found is not None and found.version == saved.version


def test_training_from_the_store_saves_the_newest_parameters(store_backend: Backend) -> None:
    for child in (AMELIA, OLIVER, JACOB):
        store_backend.add_event("self-harm-attendance", attendance(child), NOW)
    ctx = Context.build(Settings().rules)
    with store_backend.units.unit_of_work() as port:
        version, trained_on = train_stored(port, ctx, NOW)
    assert trained_on["reference_records"] == 12 and trained_on["events"] == 3  # 9 pupils, 1 ehe, 2 involvements
    with store_backend.units.unit_of_work() as port:
        found = port.newest_match_parameters(None)
        assert found is not None and found.version == version and found.trained_on == trained_on


# ---- a child on two schools' rolls, or who moved school -----------------------------------------------------

OLIVER_ID = Identity(given_name="Oliver", family_name="Brennan", date_of_birth=date(2011, 2, 3), sex="M",
                     postcode="NS2 3CD")
# Oliver is on Hilltop Academy's roll (100002) in the test world; here also on Riverside Primary's (100001).
OLIVER_AT_RIVERSIDE = "B999100100002,,Oliver,Brennan,2011-02-03,M,NS2 3CD,100001,2026-09-01,\n"
DAY = date(2026, 11, 24)


def _enrolled(store_backend: Backend, child_id: str, index: ReferenceIndex) -> list[list[str]]:
    """The schools of the child's enrolments: from ``facts_for_child``, from ``child_facts`` of the index's
    candidates, and from ``child_facts`` after the child's pupils were read ahead (each in a unit of work)."""
    found: list[list[str]] = []
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        facts = port.facts_for_child(child_id, DAY)
        assert facts is not None and facts.identity.given_name == "Oliver"
        found.append([e.school.urn for e in facts.enrolments])
        members = [c for c in index.candidates(OLIVER_ID) if c.upn == "B999100100002"]
        found.append([e.school.urn for e in port.child_facts(child_id, members, OLIVER_ID, DAY).enrolments])
    with store_backend.units.unit_of_work() as port:
        port.sync_match_index(index)
        port.read_pupils_ahead(["B999100100002"])
        found.append([e.school.urn for e in port.child_facts(child_id, members, OLIVER_ID, DAY).enrolments])
    return found


def test_a_child_on_two_schools_rolls_has_a_row_and_an_enrolment_at_each(store_backend: Backend) -> None:
    with store_backend.units.unit_of_work() as port:
        oliver = port.child_id("upn:B999100100002")
        report = load(port, "pupils", PUPILS + OLIVER_AT_RIVERSIDE, NOW)
        assert (report.rows, report.ended) == (len(PUPILS.splitlines()), 0)
        assert {key for key in port.current_keys("pupils") if key.startswith("B999100100002|")} == {
            "B999100100002|100002|2022-09-01", "B999100100002|100001|2026-09-01"}
    index = ReferenceIndex()
    # The latest enrolment first, in each way the facts are read; both records in the index, as one person.
    assert _enrolled(store_backend, oliver, index) == [["100001", "100002"]] * 3
    rows = [c for c in index.candidates(OLIVER_ID) if c.source == "pupil" and c.upn == "B999100100002"]
    assert sorted(c.record_key for c in rows) == ["B999100100002|100001|2026-09-01", "B999100100002|100002|2022-09-01"]


def test_a_child_who_moved_school_is_enrolled_at_the_new_school_only(store_backend: Backend) -> None:
    moved = PUPILS.replace("100002,2022-09-01,", "100002,2022-09-01,2026-10-31") + \
        OLIVER_AT_RIVERSIDE.replace("2026-09-01", "2026-11-02")
    with store_backend.units.unit_of_work() as port:
        oliver = port.child_id("upn:B999100100002")
    store_backend.load_reference("pupils", moved)
    index = ReferenceIndex()
    assert _enrolled(store_backend, oliver, index) == [["100001"]] * 3
    # The next file leaves the old school's row out: it is ended, and the child is still enrolled at the new one.
    with store_backend.units.unit_of_work() as port:
        report = load(port, "pupils", _without(moved, "B999100100002,,Oliver,Brennan,2011-02-03,M,NS2 3CD,100002"),
                      NOW)
        assert report.ended == 1
    assert _enrolled(store_backend, oliver, index) == [["100001"]] * 3
    # A row ended beside a current row of its UPN is no longer evidence (its values may be the mistake a correction
    # took out): the index synced since, or built afresh, holds the new school's row alone.
    for synced in (index, ReferenceIndex()):
        with store_backend.units.unit_of_work() as port:
            port.sync_match_index(synced)
        rows = [c for c in synced.candidates(OLIVER_ID) if c.source == "pupil" and c.upn == "B999100100002"]
        assert [c.record_key for c in rows] == ["B999100100002|100001|2026-11-02"]


def test_a_childs_identity_is_its_latest_enrolments_whatever_the_files_order(store_backend: Backend) -> None:
    """Oliver's old school's row has his old postcode; the new school's his new one. The facts (read from the index's
    candidates, as a fresh match reads them, or from the child id) give the new one, whichever row the file gives
    first, and after the old row is updated (which moves it on PostgreSQL's table scan)."""
    old = "B999100100002,,Oliver,Brennan,2011-02-03,M,OT9 9ZZ,100002,2022-09-01,2026-10-31\n"
    new = OLIVER_AT_RIVERSIDE.replace("2026-09-01", "2026-11-02")
    others = _without(PUPILS, "B999100100002")
    with store_backend.units.unit_of_work() as port:
        oliver = port.child_id("upn:B999100100002")
    for pupils in (others + old + new, others + new + old, others + new + old.replace("OT9 9ZZ", "OT9 9ZY")):
        store_backend.load_reference("pupils", pupils)
        index = ReferenceIndex()
        with store_backend.units.unit_of_work() as port:
            port.sync_match_index(index)
            members = [c for c in index.candidates(OLIVER_ID) if c.upn == "B999100100002"]
            assert len([c for c in members if c.source == "pupil"]) == 2
            fresh = port.child_facts(oliver, members, OLIVER_ID, DAY)
            known = port.facts_for_child(oliver, DAY)
        assert known is not None
        assert (fresh.identity.postcode, known.identity.postcode) == ("NS2 3CD", "NS2 3CD"), pupils
        assert [e.school.urn for e in fresh.enrolments] == [e.school.urn for e in known.enrolments] == ["100001"]


def test_two_rows_at_one_school_are_one_enrolment(store_backend: Backend) -> None:
    """A re-admission, or an old enrolment never closed: the school's roll holds the child once."""
    again = OLIVER_AT_RIVERSIDE.replace("100001,2026-09-01", "100002,2026-11-23")
    store_backend.load_reference("pupils", PUPILS + again)
    with store_backend.units.unit_of_work() as port:
        oliver = port.child_id("upn:B999100100002")
    assert _enrolled(store_backend, oliver, ReferenceIndex()) == [["100002"]] * 3
