"""``EventScorer`` keeps each record's weight and levels once worked out: records made and dropped one after
another (a candidate without a prepared form is prepared for each look) are each weighed as themselves."""

from __future__ import annotations

from datetime import date

from pipeline.domain.fellegi_sunter import EventScorer, Parameters, compare, match_weight, prepare
from pipeline.domain.model import Identity

EVENT = Identity("Amelia", "Hartley", date(2013, 5, 14), "F", None, "NS1 2AB")
OTHERS = [Identity(given, family, date(2013, month, 14), sex, None, postcode)
          for given, family, month, sex, postcode in [
              ("Amelia", "Hartley", 5, "F", "NS1 2AB"), ("Oliver", "Hartley", 5, "M", "NS1 2AB"),
              ("Amelie", "Hartly", 6, "F", "NS1 2AD"), ("Isla", "Moss", 1, "F", None),
              ("Amelia", "Moss", 5, None, "NS9 9ZZ"), ("Hartley", "Amelia", 5, "F", "NS1 2AB")] * 5]


def test_records_made_and_dropped_one_after_another_are_each_weighed_as_themselves() -> None:
    params, event = Parameters(), prepare(EVENT)
    scorer = EventScorer(params, event, None)
    for identity in OTHERS:
        # made, weighed and dropped: the next record made may be given the same id()
        weight, levels = scorer.weight(prepare(identity)), scorer.levels(prepare(identity))
        record = prepare(identity)
        expected = compare(event, record)
        assert weight == match_weight(params, event, expected, None)
        assert levels == tuple(expected.values())
