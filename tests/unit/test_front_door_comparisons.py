"""The review page's field-by-field agreement: the matcher's recorded level in words when there is one, a
plain comparison when the matcher recorded none."""

from __future__ import annotations

import json

from pipeline.adapters import tables as t
from pipeline.adapters.reviews import candidates_of
from pipeline.web.front_door import agreement


def test_agreement_in_words() -> None:
    assert agreement("Lilly", "Lily", "similar") == "Similar spelling"
    assert agreement("2012-03-03", "2012-03-03", "exact") == "Exactly the same"
    assert agreement("x", "y", "jaro_winkler_0_9") == "Jaro winkler 0 9"
    assert agreement("NS5 7LM", "ns5  7lm", None) == "The same"
    assert agreement("Lilly", "Lila", None) == "Different"
    assert agreement(None, "Lila", None) == "Not given on one side"


def test_candidates_with_and_without_comparisons() -> None:
    detailed = t.Event(event_id="e", event_type="self-harm-attendance", content_hash="h", record_json="{}",
                       match_json=json.dumps({"candidates": [{"child_id": "c1", "probability": 0.97, "comparisons": [
                           {"field": "given_name", "level": "nickname", "weight": 2.1}]}]}))
    assert candidates_of(detailed) == [{"child_id": "c1", "probability": 0.97, "comparisons": [
        {"field": "given_name", "level": "nickname", "weight": 2.1}]}]
    bare = t.Event(event_id="f", event_type="self-harm-attendance", content_hash="h", record_json="{}",
                   match_json=json.dumps({"candidate_child_ids": ["c1", "c2"]}))
    assert [c["child_id"] for c in candidates_of(bare)] == ["c1", "c2"]
    assert all(c["probability"] is None and c["comparisons"] == [] for c in candidates_of(bare))
