"""A realistic month for one council, replayed through the API, checked against an independent computation
(written here, not using pipeline.domain.missing) of which children need a trigger meeting and which
still-missing escalations must have fired."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.service.demo_data import csv_text, generate
from pipeline.service.reference import load
from tests.integration.conftest import Pipeline, start_pipeline
from tests.integration.test_missing_api import found as found_event

START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
LADDER = {False: (24, 48, 72), True: (6, 12, 24)}


def build_month(pupils: list[dict[str, str]], rng: random.Random) -> list[dict[str, Any]]:
    children = rng.sample(pupils, 60)
    episodes = []
    for index, child in enumerate(children):
        repeat = index < 12  # a dozen children go missing again and again
        count = rng.randint(3, 7) if repeat else rng.choice([1, 1, 1, 2])
        for _ in range(count):
            reported_at = START + timedelta(minutes=rng.randrange(0, 28 * 24 * 60))
            last_seen = reported_at - timedelta(hours=rng.choice([1, 2, 3, 6, 26]))
            high = rng.random() < 0.1
            flags = ["CCE"] if rng.random() < 0.08 else []
            roll = rng.random()
            found_after = None if roll < 0.05 else (timedelta(hours=rng.choice([30, 50, 80])) if roll < 0.2
                                                    else timedelta(minutes=rng.randrange(30, 600)))
            episodes.append({"episode": f"EP-{uuid.UUID(int=rng.getrandbits(128))}", "child": child,
                             "reported_at": reported_at, "last_seen_at": last_seen, "high": high, "flags": flags,
                             "found_at": reported_at + found_after if found_after else None})
    return episodes


def report_json(e: dict[str, Any]) -> dict[str, Any]:
    child = e["child"]
    return {"event_id": str(uuid.uuid4()), "episode_id": e["episode"], "force_code": "NS01",
            "reported_at": e["reported_at"].isoformat(), "last_seen_at": e["last_seen_at"].isoformat(),
            "child": {"nhs_number": child["nhs_number"] or None, "given_name": child["given_name"],
                      "family_name": child["family_name"], "date_of_birth": child["date_of_birth"],
                      "sex": child["sex"] or "U", "postcode": child["postcode"] or None, "school_name": None},
            "risk_grade": "HIGH" if e["high"] else "MEDIUM", "missing_from": "HOME",
            "exploitation_flags": e["flags"]}


def expected_triggers(episodes: list[dict[str, Any]]) -> set[str]:
    """UPNs of children for whom any episode meets a criterion (independently of the product's code)."""
    by_child: dict[str, list[dict[str, Any]]] = {}
    for e in episodes:
        by_child.setdefault(e["child"]["upn"], []).append(e)
    needed = set()
    for upn, mine in by_child.items():
        times = sorted(e["reported_at"] for e in mine)
        dense = any(sum(1 for other in times if t0 <= other <= t0 + timedelta(days=30)) >= 3 for t0 in times)
        long = any(((e["found_at"] or END) - e["last_seen_at"]) > timedelta(hours=24) for e in mine)
        if dense or long or any(e["high"] or e["flags"] for e in mine):
            needed.add(upn)
    return needed


def is_high(e: dict[str, Any]) -> bool:
    """High grade, or aged 13 or under with an exploitation flag."""
    born = datetime.fromisoformat(e["child"]["date_of_birth"]).date()
    day = e["reported_at"].date()
    age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    return bool(e["high"] or (e["flags"] and age <= 13))


def expected_levels(e: dict[str, Any], runs: list[datetime]) -> int:
    """A rung fires at the first run at or after its time, if that run is before the found event is handled."""
    fired = 0
    for hours in LADDER[is_high(e)]:
        due = e["reported_at"] + timedelta(hours=hours)
        first_run = next((r for r in runs if r >= due), None)
        if first_run is not None and (e["found_at"] is None or first_run < e["found_at"]):
            fired += 1
    return fired


def test_a_month_of_missing_episodes(tmp_path: Path) -> None:
    pipeline: Pipeline = start_pipeline(tmp_path)
    data = generate(seed=3, pupils=800)
    with pipeline.services.store.unit_of_work() as port:
        for kind in ("schools", "teams", "pupils", "ehe", "involvements"):
            load(port, kind, csv_text(kind, data[kind]), pipeline.clock())
    current = [p for p in data["pupils"] if not p["on_roll_to"]]
    unique = Counter((p["given_name"], p["family_name"], p["date_of_birth"]) for p in current)
    pupils = [p for p in current if unique[(p["given_name"], p["family_name"], p["date_of_birth"])] == 1]
    episodes = build_month(pupils, random.Random(11))

    timeline: list[tuple[datetime, str, dict[str, Any]]] = []
    for e in episodes:
        timeline.append((e["reported_at"], "missing-reported", report_json(e)))
        if e["found_at"] is not None and e["found_at"] < END:
            timeline.append((e["found_at"], "missing-found", found_event(e["episode"], e["found_at"])))
        elif e["found_at"] is not None:
            e["found_at"] = None  # found after the month: still missing as far as this replay goes
    hours = [START + timedelta(hours=h) for h in range(0, 30 * 24 + 1)]
    runs = sorted({*hours, *(at for at, _, _ in timeline)})
    queue = sorted(timeline, key=lambda item: item[0])
    position = 0
    for run_at in runs:
        pipeline.clock.now = run_at
        while position < len(queue) and queue[position][0] <= run_at:
            _, event_type, body = queue[position]
            assert pipeline.post_event(body, event_type).status_code == 202
            position += 1
        pipeline.run()

    with pipeline.services.store.read() as session:
        children = {c.child_id: c.person_key for c in session.exec(select(t.Child)).all()}
        meetings = session.exec(select(t.Deadline).where(t.Deadline.kind == "trigger_meeting")).all()
        still = {d.subject_id: d for d in session.exec(select(t.Deadline).where(
            t.Deadline.kind == "still_missing")).all()}
        linked = {row.episode_id: row.child_id for row in session.exec(select(t.MissingEpisode)).all()}
    unmatched = [e for e in episodes if not linked[e["episode"]]]
    if unmatched:
        with pipeline.services.store.read() as session:
            reports = {r.event_id: r for r in session.exec(select(t.Event)).all()}
        print([(r.match_outcome, r.match_json) for r in reports.values() if r.child_id is None][:3])
    assert not unmatched, "every child of the demo roll is matched"

    raised = Counter(children[m.child_id].removeprefix("upn:") for m in meetings)
    assert set(raised.values()) == {1}  # never two for one child (none was held, so none closed)
    assert set(raised) == expected_triggers(episodes)
    assert 12 <= len(raised) < 60

    mismatches = []
    for e in episodes:
        deadline = still[e["episode"]]
        want = expected_levels(e, runs)
        if deadline.escalation_level != want:
            mismatches.append((e["episode"], deadline.escalation_level, want))
    assert not mismatches, mismatches[:5]
    assert sum(d.escalation_level for d in still.values()) > 10
    pipeline.services.store.dispose()
