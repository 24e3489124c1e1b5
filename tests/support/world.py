"""A small, hand-made reference world whose every routing case is known, and builders for events.

All people are fictional; NHS numbers are in the 999 test range.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

SCHOOLS = """urn,name,la_code,in_area,school_type,dsl_email,dsl_phone,deputy_email,deputy_phone
100001,Riverside Primary School,999,true,STATE,dsl@riverside.sch.example,+447700900001,deputy@riverside.sch.example,+447700900002
100002,Hilltop Academy,999,true,STATE,dsl@hilltop.sch.example,,,
100003,Oakwood House School,999,true,INDEPENDENT,dsl@oakwood.sch.example,,,
100004,Border High School,888,false,STATE,dsl@border.sch.example,,,
100005,Quiet Lane Primary,999,true,STATE,,,,
"""

PUPILS = """upn,nhs_number,given_name,family_name,date_of_birth,sex,postcode,school_urn,on_roll_from,on_roll_to
A999100100001,9990000018,Amelia,Hartley,2013-05-14,F,NS1 2AB,100001,2020-09-01,
B999100100002,,Oliver,Brennan,2011-02-03,M,NS2 3CD,100002,2022-09-01,
C999100100003,,Isla,Fairbairn,2012-07-21,F,NS3 4EF,100003,2021-09-01,
D999100100004,,Noah,Castell,2010-11-30,M,OT4 5GH,100004,2021-09-01,
E999100100005,,Ruby,Penhale,2014-01-09,F,NS4 6JK,100005,2021-09-01,
F999100100006,,Lily,Ashworth,2012-03-03,F,NS5 7LM,100001,2019-09-01,
F999100100007,,Lila,Ashworth,2012-03-03,F,NS5 7LM,100001,2019-09-01,
G999100100008,,Jacob,Merriman,2011-06-06,M,NS6 8NP,100001,2020-09-01,
H999100100009,,Freya,Dunmore,2013-08-08,F,NS7 9QR,100001,2020-09-01,2024-07-19
"""

EHE = """given_name,family_name,date_of_birth,postcode,nhs_number
Harvey,Lindqvist,2012-10-10,NS8 1ST,
"""

INVOLVEMENTS = """nhs_number,upn,given_name,family_name,date_of_birth,status,worker_email,team,manager_email,placing_la,iro_email
,G999100100008,Jacob,Merriman,2011-06-06,CHILD_LOOKED_AFTER,sam.worker@northshire.gov.example,CLA_TEAM,cla.manager@northshire.gov.example,888,iro@northshire.gov.example
,B999100100002,Oliver,Brennan,2011-02-03,EARLY_HELP,erin.helper@northshire.gov.example,EARLY_HELP,eh.manager@northshire.gov.example,,
"""

TEAMS = """team,email,phone
SCIES,scies@northshire.gov.example,+447700900100
EHE_MANAGER,ehe@northshire.gov.example,
CME,cme@northshire.gov.example,
FRONT_DOOR,front.door@northshire.gov.example,+447700900101
FRONT_DOOR_MANAGER,fd.manager@northshire.gov.example,
MISSING_COORDINATOR,missing@northshire.gov.example,
RHI_PROVIDER,rhi@northshire.gov.example,
EDUCATION_SAFEGUARDING_LEAD,esl@northshire.gov.example,
HEAD_OF_SERVICE,hos@northshire.gov.example,
DIRECTOR,director@northshire.gov.example,
LA_888,la888@otherplace.gov.example,
"""

REFERENCE = {"schools": SCHOOLS, "teams": TEAMS, "pupils": PUPILS, "ehe": EHE, "involvements": INVOLVEMENTS}

# Every identity value above, for the privacy test.
_IDENTITY_COLUMNS = {
    "pupils": ("upn", "nhs_number", "given_name", "family_name", "date_of_birth", "postcode"),
    "ehe": ("given_name", "family_name", "date_of_birth", "postcode", "nhs_number"),
    "involvements": ("nhs_number", "upn", "given_name", "family_name", "date_of_birth"),
}
IDENTITY_VALUES = sorted({
    value
    for kind, columns in _IDENTITY_COLUMNS.items()
    for row in csv.DictReader(io.StringIO(REFERENCE[kind]))
    for column, value in row.items()
    if column in columns and value
})

AMELIA = {"nhs_number": "9990000018", "given_name": "Amelia", "family_name": "Hartley",
          "date_of_birth": "2013-05-14", "sex": "F", "postcode": "NS1 2AB", "school_name": None}
OLIVER = {"nhs_number": None, "given_name": "Oliver", "family_name": "Brennan", "date_of_birth": "2011-02-03",
          "sex": "M", "postcode": "NS2 3CD", "school_name": "Hilltop Academy"}
ISLA = {"nhs_number": None, "given_name": "Isla", "family_name": "Fairbairn", "date_of_birth": "2012-07-21",
        "sex": "F", "postcode": "NS3 4EF", "school_name": None}
NOAH = {"nhs_number": None, "given_name": "Noah", "family_name": "Castell", "date_of_birth": "2010-11-30",
        "sex": "M", "postcode": "OT4 5GH", "school_name": None}
RUBY = {"nhs_number": None, "given_name": "Ruby", "family_name": "Penhale", "date_of_birth": "2014-01-09",
        "sex": "F", "postcode": "NS4 6JK", "school_name": None}
JACOB = {"nhs_number": None, "given_name": "Jacob", "family_name": "Merriman", "date_of_birth": "2011-06-06",
         "sex": "M", "postcode": "NS6 8NP", "school_name": None}
HARVEY = {"nhs_number": None, "given_name": "Harvey", "family_name": "Lindqvist", "date_of_birth": "2012-10-10",
          "sex": "M", "postcode": "NS8 1ST", "school_name": None}
FREYA = {"nhs_number": None, "given_name": "Freya", "family_name": "Dunmore", "date_of_birth": "2013-08-08",
         "sex": "F", "postcode": "NS7 9QR", "school_name": None}
LILY_TYPO = {"nhs_number": None, "given_name": "Lilly", "family_name": "Ashworth", "date_of_birth": "2012-03-03",
             "sex": "F", "postcode": "NS5 7LM", "school_name": None}
UNKNOWN = {"nhs_number": None, "given_name": "Zebedee", "family_name": "Quixote", "date_of_birth": "2012-01-01",
           "sex": "M", "postcode": "NS9 9ZZ", "school_name": None}

# Tuesday 24 November 2026, 20:00 London (= UTC in winter): a term-time evening.
TERM_EVENING = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def attendance(child: dict[str, Any], arrived_at: datetime = TERM_EVENING, **overrides: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()),
        "attendance_id": f"ED-{uuid.uuid4().hex[:8]}",
        "hospital_ods_code": "RXX01",
        "arrived_at": arrived_at.isoformat(),
        "child": dict(child),
        "admitted": False,
        "risk_summary": "Discharged with a safety plan; CAMHS follow-up booked.",
        "exploitation_screening": "NO_CONCERN",
        "consent": "GIVEN",
        "shared_without_consent_reason": None,
        "clinician_contact": "ED safeguarding nurse, ext 4321",
    }
    event.update(overrides)
    return event
