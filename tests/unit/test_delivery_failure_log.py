"""An outage is plain in the log: the first failure of a kind (a channel's deliveries, the topics' relays) at once,
then one line a minute per kind with how many failed since; never a provider's own error text (it can quote a
number or address)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.service.relay import FailureReport

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_first_failure_is_logged_then_one_line_a_minute_per_channel(caplog: pytest.LogCaptureFixture) -> None:
    report = FailureReport()

    def failed(channel: str, outcome: str, notification: str, then: str, at: datetime) -> None:
        report.failed(f"{channel} deliveries", at, logging.WARNING, "%s delivery failed: %s, notification %s; %s",
                      channel, outcome, notification, then)

    with caplog.at_level("WARNING", logger="pipeline.service.relay"):
        failed("sms", "transient", "n-1", "retry later", NOW)
        for second in range(1, 30):
            failed("sms", "transient", f"n-{second}", "retry later", NOW + timedelta(seconds=second))
        failed("email", "permanent", "n-9", "given up on this channel", NOW + timedelta(seconds=5))
        failed("sms", "transient", "n-99", "retry later", NOW + timedelta(seconds=61))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "sms delivery failed: transient, notification n-1; retry later",
        "email delivery failed: permanent, notification n-9; given up on this channel",
        "sms delivery failed: transient, notification n-99; retry later (29 more sms deliveries failed since the "
        "last report)",
    ]


def test_failures_counted_in_a_minute_that_ended_are_still_reported(caplog: pytest.LogCaptureFixture) -> None:
    report = FailureReport()
    with caplog.at_level("WARNING", logger="pipeline.service.relay"):
        report.failed("email deliveries", NOW, logging.WARNING, "email delivery failed: %s", "n-1")
        report.failed("email deliveries", NOW + timedelta(seconds=10), logging.WARNING, "email delivery failed: %s",
                      "n-2")
        report.report_pending(NOW + timedelta(seconds=30))  # the minute is not over: nothing yet
        report.report_pending(NOW + timedelta(seconds=70))  # the provider is back; the count is not lost
        report.report_pending(NOW + timedelta(seconds=200))  # nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        "email delivery failed: n-1",
        "1 more email deliveries failed since the last report",
    ]
