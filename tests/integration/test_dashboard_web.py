"""The managers' dashboard on the known month of tests/integration/test_scorecard.py: headline figures this
quarter against the previous one, charts as SVG with their figures in a table, and the drill-down to the
cases behind a figure (each named row audited as a view). Only managers see any of it."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import select

from pipeline.adapters import tables as t
from pipeline.entrypoints.api import create_app
from pipeline.web.dashboard import CHART_POLICY
from tests.integration.conftest import start_pipeline
from tests.integration.test_scorecard import replay_month
from tests.integration.test_web_security import sign_in

MANAGER = "manager@test.example"


def test_the_dashboard_its_charts_and_the_cases_behind_a_figure(tmp_path: Path) -> None:
    pipeline = start_pipeline(tmp_path)
    replay_month(pipeline, lambda _: None)  # the clock ends on Tuesday 20 October 2026
    client = sign_in(TestClient(create_app(pipeline.services), follow_redirects=False), MANAGER)

    html = client.get("/dashboard").text
    headline = html[html.index('id="headline"'):html.index("</table>", html.index('id="headline"'))]
    # Q3 so far: S3 and S5 both late (0 of 2); Q2: S1 on time, S2 late (1 of 2).
    ack = headline[headline.index("School alerts acknowledged on time"):]
    ack = ack[:ack.index("</tr>")]
    assert "0.0%" in ack and "50.0%" in ack and "1 of 2" in ack
    q2_cases = "/dashboard/cases?measure=ack_on_time&amp;from=2026-07-01&amp;to=2026-09-30"
    assert q2_cases in ack
    rhi = headline[headline.index("Return interviews within 72 hours"):]
    assert "0 of 3" in rhi[:rhi.index("</tr>")] and "1 of 3" in rhi[:rhi.index("</tr>")]

    for chart in ("ack_on_time-week", "ack_on_time-quarter", "rhi_within_72h-week", "rhi_within_72h-quarter"):
        assert f'src="/dashboard/charts/{chart}.svg"' in html
        assert f'id="figures-{chart}"' in html
        svg = client.get(f"/dashboard/charts/{chart}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        assert svg.headers["content-security-policy"] == CHART_POLICY
        assert b"<svg" in svg.content and b"<script" not in svg.content and b"timeliness" in svg.content
    figures = html[html.index('id="figures-ack_on_time-quarter"'):]
    figures = figures[:figures.index("</table>")]
    assert re.search(r"2026-27 Q2</td>\s*<td[^>]*>1 of 2</td>", figures)

    cases = client.get(q2_cases.replace("&amp;", "&")).text
    assert "1 of 2 counted as on time" in cases
    assert "Amelia Hartley" in cases and "Oliver Brennan" in cases
    with pipeline.services.store.read() as session:
        views = session.exec(select(t.AuditEntry).where(t.AuditEntry.actor == MANAGER,
                                                        t.AuditEntry.action == "viewed")).all()
    assert len([v for v in views if v.reason.startswith("dashboard drill-down ack_on_time")]) == 2
    import pipeline.web.dashboard as dashboard

    shown, dashboard.CASES_SHOWN = dashboard.CASES_SHOWN, 1  # more cases than the page lists: it says so
    try:
        first = client.get(q2_cases.replace("&amp;", "&")).text
    finally:
        dashboard.CASES_SHOWN = shown
    assert "There are more than 1 cases: the first 1, the soonest due first, are shown" in first
    case_link = re.search(r'href="(/overdue/cases/[0-9a-f-]+)"', cases)
    assert case_link is not None
    case_page = client.get(case_link.group(1))
    assert case_page.status_code == 200 and 'id="deadline-summary"' in case_page.text

    dsl = sign_in(TestClient(create_app(pipeline.services), follow_redirects=False), "dsl@riverside.sch.example")
    for path in ("/dashboard", "/dashboard/charts/ack_on_time-week.svg", q2_cases.replace("&amp;", "&"),
                 case_link.group(1), "/overdue"):
        answer = dsl.get(path)
        assert answer.status_code == 404 and "Amelia" not in answer.text
    pipeline.services.store.dispose()
