"""A provider outage is plain in the log: the first failed attempt on a channel at once, then one line a minute
per channel with how many failed since; never a provider's own error text (it can quote a number or address)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.service.relay import FailureReport

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_the_first_failure_is_logged_then_one_line_a_minute_per_channel(caplog: pytest.LogCaptureFixture) -> None:
    report = FailureReport()
    with caplog.at_level("WARNING", logger="pipeline.service.relay"):
        report.failed("sms", "transient", "n-1", "retry later", NOW)
        for second in range(1, 30):
            report.failed("sms", "transient", f"n-{second}", "retry later", NOW + timedelta(seconds=second))
        report.failed("email", "permanent", "n-9", "given up on this channel", NOW + timedelta(seconds=5))
        report.failed("sms", "transient", "n-99", "retry later", NOW + timedelta(seconds=61))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "sms delivery failed: transient, notification n-1; retry later",
        "email delivery failed: permanent, notification n-9; given up on this channel",
        "sms delivery failed: transient, notification n-99; retry later (29 more failed on sms since the last report)",
    ]


def test_failures_counted_in_a_minute_that_ended_are_still_reported(caplog: pytest.LogCaptureFixture) -> None:
    report = FailureReport()
    with caplog.at_level("WARNING", logger="pipeline.service.relay"):
        report.failed("email", "transient", "n-1", "retry later", NOW)
        report.failed("email", "transient", "n-2", "retry later", NOW + timedelta(seconds=10))
        report.report_pending(NOW + timedelta(seconds=30))  # the minute is not over: nothing yet
        report.report_pending(NOW + timedelta(seconds=70))  # the provider is back; the count is not lost
        report.report_pending(NOW + timedelta(seconds=200))  # nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        "email delivery failed: transient, notification n-1; retry later",
        "1 more email deliveries failed since the last report",
    ]
