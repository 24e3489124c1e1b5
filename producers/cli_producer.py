"""`safeguard produce EVENT_TYPE FILE`: each JSON line becomes one event through the durable intake.

Lines are submitted in batches, one transaction each, so a large file is durable batch by batch. Bad
lines are dead-lettered and reported by line number with the reason (never the values).
"""

from __future__ import annotations

import sys
from itertools import islice
from pathlib import Path

from pipeline import codec
from pipeline.settings import Settings

BATCH = 500


def produce_file(settings: Settings, event_type: str, file: Path) -> int:
    if event_type not in codec.EVENT_TYPES:
        print(f"unknown event type; use one of {', '.join(codec.EVENT_TYPES)}", file=sys.stderr)
        return 2
    if not file.is_file():
        print(f"no such file: {file}", file=sys.stderr)
        return 2
    from pipeline.bootstrap import build
    from pipeline.service.intake import Submission

    services = build(settings)
    rejected = accepted = 0
    with file.open("rb") as handle:
        numbered = ((number, line.strip()) for number, line in enumerate(handle, start=1))
        lines = ((n, line) for n, line in numbered if line)
        while batch := list(islice(lines, BATCH)):
            submissions = [Submission(event_type, line, "application/json", None, "cli") for _, line in batch]
            if services.event_sender is not None:
                from pipeline.entrypoints.api import send_to_kafka

                results = [send_to_kafka(services, submission) for submission in submissions]
            else:
                results = services.intake.submit_many(submissions)
            for (number, _), result in zip(batch, results, strict=True):
                if result.accepted:
                    accepted += 1
                    continue
                rejected += 1
                if "detail" in result.body:  # e.g. the broker unavailable: not a fault of the line
                    print(f"line {number}: {result.body['detail']}", file=sys.stderr)
                for error in result.body.get("errors", []):
                    print(f"line {number}: {error['field'] or 'line'}: {error['message']}", file=sys.stderr)
    print(f"{accepted} accepted, {rejected} rejected")
    return 1 if rejected else 0
