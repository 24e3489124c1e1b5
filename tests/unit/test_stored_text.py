"""Values the hot path keeps instead of working out each time (``iso_instant``, ``ladder_json``, a match
breakdown's ``shown_weight``), JSON from an encoder made once (``json_text``), and Core rows read as plain named
tuples (``plain_rows``): each gives exactly what the plain way gives, and an instant outside UTC is never answered
from what was kept."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from pipeline.adapters.driver_statements import plain_rows
from pipeline.domain import model
from pipeline.domain.fellegi_sunter import shown_weight
from pipeline.domain.model import LadderStep, iso_instant, ladder_json
from pipeline.json_text import json_text, text_encoder

LONDON = ZoneInfo("Europe/London")


def test_an_instant_has_isoformats_text_each_time_it_is_asked() -> None:
    for value in (datetime(2026, 12, 1, 9, 30, tzinfo=UTC), datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC),
                  datetime(2026, 3, 29, 1, 0, tzinfo=timezone(timedelta(hours=1))),
                  datetime(2026, 7, 1, 12, 0, tzinfo=LONDON)):
        assert iso_instant(value) == value.isoformat()
        assert iso_instant(value) == value.isoformat()


def test_two_instants_of_another_zone_that_differ_only_in_fold_get_their_own_texts() -> None:
    # 01:30 on the last Sunday of October happens twice in London: fold 0 is BST (+01:00), fold 1 GMT (+00:00).
    first = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON)
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)  # why such instants are never kept by value
    assert iso_instant(first) == "2026-10-25T01:30:00+01:00"
    assert iso_instant(second) == "2026-10-25T01:30:00+00:00"


def test_the_kept_texts_are_bounded_and_still_right() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes in range(model.utc_iso_text.cache_info().maxsize + 10):
        value = start + timedelta(minutes=minutes)
        assert iso_instant(value) == value.isoformat()
    assert model.utc_iso_text.cache_info().currsize <= model.utc_iso_text.cache_info().maxsize


class _SelfFormatting(datetime):
    """A datetime subclass (as pandas, pendulum or freezegun make) that formats itself its own way."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "its own text"


def test_a_datetime_subclass_formats_itself_and_does_not_take_or_give_a_plain_instants_text() -> None:
    plain = datetime(2026, 12, 4, 9, 15, tzinfo=UTC)
    odd = _SelfFormatting(2026, 12, 4, 9, 15, tzinfo=UTC)
    assert odd == plain and hash(odd) == hash(plain)  # why only plain datetimes are kept by value
    assert iso_instant(plain) == plain.isoformat()
    assert iso_instant(odd) == "its own text"
    assert iso_instant(plain) == plain.isoformat()
    steps = (LadderStep(odd, ("dsl",), "reminder"),)
    assert ladder_json(steps) == _plain_ladder(steps)
    assert ladder_json((LadderStep(plain, ("dsl",), "reminder"),)) == _plain_ladder(
        (LadderStep(plain, ("dsl",), "reminder"),))


def _plain_ladder(steps: tuple[LadderStep, ...]) -> str:
    return json.dumps([{"at": step.at.isoformat(), "notify": list(step.notify), "action": step.action}
                       for step in steps])


def test_a_ladder_is_stored_as_json_dumps_writes_it() -> None:
    due = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    steps = (LadderStep(due - timedelta(hours=24), ("worker",), "reminder"),
             LadderStep(due, ("team_manager", "front_door"), "escalation"))
    assert ladder_json(steps) == _plain_ladder(steps)
    assert ladder_json(steps) == _plain_ladder(steps)  # now from what was kept
    assert json.loads(ladder_json(())) == []


def test_a_ladder_in_another_zone_is_not_given_the_text_of_the_same_instants_in_utc() -> None:
    at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    in_utc = (LadderStep(at, ("worker",), "reminder"),)
    assert ladder_json(in_utc) == _plain_ladder(in_utc)  # kept
    for zone in (timezone(timedelta(hours=1)), LONDON):
        elsewhere = (LadderStep(at.astimezone(zone), ("worker",), "reminder"),)
        assert elsewhere == in_utc  # equal as keys, yet written "13:00:00+01:00"
        assert ladder_json(elsewhere) == _plain_ladder(elsewhere) != ladder_json(in_utc)


def test_the_kept_ladders_are_bounded_and_still_right() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes in range(model.kept_ladder_text.cache_info().maxsize + 10):
        steps = (LadderStep(start + timedelta(minutes=minutes), ("worker", "team_manager"), "escalation"),)
        assert ladder_json(steps) == _plain_ladder(steps)
    assert model.kept_ladder_text.cache_info().currsize <= model.kept_ladder_text.cache_info().maxsize


def test_ladders_in_another_zone_differing_only_in_fold_are_not_confused() -> None:
    first = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON)
    one = (LadderStep(first, ("worker",), "reminder"),)
    other = (LadderStep(first.replace(fold=1), ("worker",), "reminder"),)
    assert one == other  # equal as keys, yet different instants
    assert ladder_json(one) == _plain_ladder(one)
    assert ladder_json(other) == _plain_ladder(other)
    assert ladder_json(one) != ladder_json(other)


def test_plain_rows_read_like_core_rows() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.execute(sa.text("CREATE TABLE pupil (upn TEXT, born TEXT, sex TEXT)"))
        connection.execute(sa.text("INSERT INTO pupil VALUES ('A1', '2014-02-03', NULL), ('B2', NULL, 'F')"))
        query = sa.text("SELECT upn, born, sex FROM pupil ORDER BY upn")
        core = list(connection.execute(query))
        plain = plain_rows(connection.execute(query))
        again = plain_rows(connection.execute(query))
    assert [tuple(row) for row in plain] == [tuple(row) for row in core]
    assert [(row.upn, row.born, row.sex) for row in plain] == [(row.upn, row.born, row.sex) for row in core]
    assert [dict(row._mapping) for row in plain] == [dict(row._mapping) for row in core]
    assert type(plain[0]) is type(again[0])  # one row type per set of columns
    assert getattr(plain[0], "postcode", None) is None


def test_plain_rows_of_other_columns_have_their_own_names_and_odd_names_stay_core_rows() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        upns = plain_rows(connection.execute(sa.text("SELECT 'A1' AS upn, 7 AS episodes")))
        counts = plain_rows(connection.execute(sa.text("SELECT 'x' AS kind, 3 AS n")))
        odd = plain_rows(connection.execute(sa.text("SELECT 1 AS _hidden, 2 AS class, count(*) FROM (SELECT 1)")))
    assert (upns[0].upn, upns[0].episodes) == ("A1", 7) and dict(upns[0]._mapping) == {"upn": "A1", "episodes": 7}
    assert (counts[0].kind, counts[0].n) == ("x", 3) and not hasattr(counts[0], "upn")
    assert tuple(odd[0]) == (1, 2, 1) and odd[0]._mapping["class"] == 2  # SQLAlchemy's rows, as before


VALUES = [
    {"episode_id": "e-1", "reported_at": "2026-12-03T10:00:00+00:00", "last_seen_at": None, "flags": ["cse", "cce"]},
    {"nested": {"list": [1, 2.5, -0.0, 1e300, True, False, None], "text": "caf\u00e9 \u2713 \"quoted\" \\ \n\t\x00"}},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    [], {}, "just text", 12, 3.25, float("nan"), float("inf"), None, True,
    [{"at": "2026-12-04T09:00:00+00:00", "notify": ["worker"], "action": "reminder"}],
]


def test_json_text_is_json_dumps_text() -> None:
    for value in VALUES:
        assert json_text(value) == json.dumps(value)


def test_a_text_encoder_with_a_default_is_json_dumps_with_it_and_refuses_as_it_does_without() -> None:
    loosely = text_encoder(default=str)
    value = {"on": date(2026, 12, 3), "at": datetime(2026, 12, 3, 9, 0, tzinfo=UTC), "n": [date(2026, 1, 1)]}
    assert loosely(value) == json.dumps(value, default=str)
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text({"on": date(2026, 12, 3)})
    assert json_text({"after": "a refusal"}) == '{"after": "a refusal"}'  # nothing left over from the failed call
    for value in VALUES:
        assert loosely(value) == json.dumps(value, default=str)


def test_a_shown_weight_is_round_to_two_places_each_time_it_is_asked() -> None:
    rng = random.Random(12)
    values = [0.0, -0.0, 1.005, 2.675, -3.14159, 1e-9, -1e-9, 12.345, 7.0, *(rng.uniform(-20, 20) for _ in range(500))]
    for _ in range(2):  # the second time from what was kept
        for value in values:
            shown = shown_weight(value)
            assert shown == round(value, 2) and repr(shown) == repr(round(value, 2))
    assert repr(shown_weight(-0.0)) == "-0.0" and repr(shown_weight(0.0)) == "0.0"


def test_json_text_after_a_refusal_deep_inside_is_still_json_dumps_text() -> None:
    value: dict[str, Any] = {"a": {"b": object()}}
    with pytest.raises(TypeError):
        json_text(value)
    value["a"]["b"] = 1  # the same objects again: nothing of the failed call's is kept
    assert json_text(value) == json.dumps(value)
    with pytest.raises(TypeError):
        json_text({(1, 2): 1})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(RecursionError):  # json.dumps's ValueError needs the cycle check left out here
        json_text(cyclic)


def test_without_the_c_accelerator_the_text_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.json_text

    monkeypatch.setattr(pipeline.json_text, "_c_make_encoder", None)
    loosely, plain = text_encoder(default=str), text_encoder()
    for value in VALUES:
        assert plain(value) == json.dumps(value) and loosely(value) == json.dumps(value, default=str)


def test_a_shown_weight_that_is_not_a_plain_float_is_rounded_as_it_is() -> None:
    import numpy as np

    for value in (np.float64(-5.135), np.float64(2.675), 3, True):
        assert repr(shown_weight(value)) == repr(round(value, 2))  # type: ignore[arg-type]
    assert repr(shown_weight(-5.135)) == repr(round(-5.135, 2))  # a numpy float did not decide a float's text
