"""Managers: the dashboard (the scorecard's headline measures this quarter against the previous one, and
charts of acknowledgement and return-interview timeliness by week and by quarter, each with its figures in a
table beside it) and the drill-down from any ratio to the cases behind it.

Charts are drawn on the server as SVG by pygal, without script, and served as images with a text
alternative; the same figures are always in the table next to them. Every named row of a drill-down is
audited as a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pygal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pygal.style import Style

from pipeline.adapters.overdue_board import KIND_IN_WORDS, child_name
from pipeline.adapters.repository import Repository
from pipeline.adapters.scorecard import (
    RATIO_MEASURES,
    Period,
    Ratio,
    ScorecardQueries,
    ScoreRow,
    cases_behind,
    period,
    quarter_bounds,
    quarter_label,
)
from pipeline.bootstrap import Services
from pipeline.domain.model import Role
from pipeline.service.sessions import SignedIn
from pipeline.web.auth import PageNotFound, services_of, signed_in_as
from pipeline.web.render import page
from pipeline.web.words import long_date

router = APIRouter(include_in_schema=False)
Manager = Annotated[SignedIn, Depends(signed_in_as(Role.MANAGER))]

MEASURE_WORDS = {
    "ack_on_time": "School alerts acknowledged on time",
    "median_minutes_to_ack": "Median time to acknowledge a school alert",
    "rhi_within_72h": "Return interviews within 72 hours",
    "rhi_offered": "Return interviews offered (completed, declined or not possible)",
    "trigger_meeting_on_time": "Trigger meetings held on time",
    "repeat_missing_children": "Children missing 3 or more times in 30 days",
    "reviews_on_time": "Match reviews decided on time",
    "withheld_decided_on_time": "Consent decisions made on time",
    "open_escalations": "Open escalations at the end of the period",
    "delivery_failures": "Notifications no channel delivered",
}
CHARTS = {"ack_on_time": "Acknowledgement timeliness", "rhi_within_72h": "Return interview timeliness"}
SPANS = {"week": "by week (last 12 weeks)", "quarter": "by quarter (last 4 financial quarters)"}
CHART_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
CHART_STYLE = Style(background="#ffffff", plot_background="#ffffff", foreground="#0b0c0c",
                    foreground_strong="#0b0c0c", foreground_subtle="#505a5f", colors=("#1d70b8",),
                    font_family="arial, sans-serif", label_font_size=14, major_label_font_size=14,
                    value_font_size=14, title_font_size=18)


@dataclass(frozen=True)
class Point:
    label: str
    first_day: date
    last_day: date
    ratio: Ratio

    @property
    def percent(self) -> float | None:
        value = self.ratio.value
        return round(value * 100, 1) if value is not None else None


def today_of(services: Services) -> date:
    return services.ctx.policy.calendar.local(services.clock()).date()


def span_periods(today: date, span: str) -> list[tuple[str, date, date]]:
    """The last 12 weeks (Monday to Sunday, this one included) or the last 4 financial quarters."""
    if span == "week":
        monday = today - timedelta(days=today.weekday())
        starts = [monday - timedelta(weeks=n) for n in range(11, -1, -1)]
        return [(f"w/c {start.day} {start:%b}", start, start + timedelta(days=6)) for start in starts]
    found = []
    first, _ = quarter_bounds(today)
    for _ in range(4):
        q_first, q_last = quarter_bounds(first)
        found.append((quarter_label(q_first), q_first, q_last))
        first = q_first - timedelta(days=1)
    return list(reversed(found))


def series(services: Services, measure: str, span: str) -> list[Point]:
    """The measure's ratio for each period of the span (the partnership's row), from the scorecard queries."""
    tz, now = services.ctx.policy.calendar.tz, services.clock()
    points = []
    with services.store.read() as session:
        queries = ScorecardQueries(session, services.store.is_postgres)
        for label, first, last in span_periods(today_of(services), span):
            p = period(first, last, now, tz, label)
            ratio = Ratio()
            if measure == "ack_on_time":
                for key, _, numerator, denominator in queries.deadline_ratios(p, None):
                    if key == measure:
                        ratio = Ratio(numerator, denominator)
            else:
                for _, on_time, _, denominator in queries.return_interviews(p, None):
                    ratio = Ratio(on_time, denominator)
            points.append(Point(label, first, last, ratio))
    return points


def chart_svg(measure: str, span: str, points: list[Point]) -> bytes:
    chart = pygal.Bar(title=f"{CHARTS[measure]} {SPANS[span]}", style=CHART_STYLE, show_legend=False,
                      range=(0, 100), js=[], width=800, height=400, x_label_rotation=30 if span == "week" else 0,
                      y_title="per cent on time", print_values=False, include_x_axis=True)
    chart.x_labels = [point.label for point in points]
    chart.add(CHARTS[measure], [point.percent for point in points])
    tree = chart.render_tree()
    for parent in list(tree.iter()):  # pygal always writes its tooltip script's config: an image needs none
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    svg: bytes = ElementTree.tostring(tree, encoding="utf-8", xml_declaration=True)
    return svg


def cases_link(measure: str, first: date, last: date) -> str:
    return "/dashboard/cases?" + urlencode({"measure": measure, "from": first.isoformat(), "to": last.isoformat()})


def headline(row: ScoreRow) -> dict[str, Any]:
    body = row.as_dict()
    return {key: body[key] for key in MEASURE_WORDS}


@router.get("/dashboard")
def dashboard(request: Request, visitor: Manager) -> Response:
    services = services_of(request)
    today = today_of(services)
    this_first, _ = quarter_bounds(today)
    last_first, last_last = quarter_bounds(this_first - timedelta(days=1))
    tz, now = services.ctx.policy.calendar.tz, services.clock()
    with services.store.read() as session:
        queries = ScorecardQueries(session, services.store.is_postgres)
        current = period(this_first, today, now, tz, quarter_label(today))
        previous = period(last_first, last_last, now, tz, quarter_label(last_first))
        figures = {p.label: headline(queries.rows(p, None)[p.label]) for p in (current, previous)}
    charts = [{"measure": measure, "span": span, "title": f"{title} {SPANS[span]}",
               "src": f"/dashboard/charts/{measure}-{span}.svg", "points": series(services, measure, span)}
              for measure, title in CHARTS.items() for span in SPANS]
    return page(request, "dashboard.html", title="Dashboard", current=current, previous=previous,
                figures=figures, measures=MEASURE_WORDS, ratios=RATIO_MEASURES, charts=charts,
                cases_link=cases_link)


@router.get("/dashboard/charts/{name}.svg")
def chart(name: str, request: Request, visitor: Manager) -> Response:
    measure, _, span = name.rpartition("-")
    if measure not in CHARTS or span not in SPANS:
        raise PageNotFound()
    svg = chart_svg(measure, span, series(services_of(request), measure, span))
    return Response(svg, media_type="image/svg+xml",
                    headers={"Content-Security-Policy": CHART_POLICY, "Cache-Control": "no-store"})


def _period_of(request: Request, services: Services) -> Period:
    try:
        first = date.fromisoformat(request.query_params.get("from", ""))
        last = date.fromisoformat(request.query_params.get("to", ""))
    except ValueError:
        raise PageNotFound() from None
    if last < first or (last - first).days > 3 * 366:
        raise PageNotFound()
    return period(first, last, services.clock(), services.ctx.policy.calendar.tz,
                  f"{long_date(first)} to {long_date(last)}")


CASES_SHOWN = 500  # a drill-down's rows, the soonest due first (the dashboard's figure counts every case)


@router.get("/dashboard/cases")
def cases(request: Request, visitor: Manager) -> Response:
    """The cases behind one ratio for a period: each counted in the denominator, marked when in the numerator."""
    services = services_of(request)
    measure = request.query_params.get("measure", "")
    if measure not in RATIO_MEASURES:
        raise PageNotFound()
    p = _period_of(request, services)
    now = services.clock()
    with services.store.transaction() as session:
        found = cases_behind(session, measure, p, limit=CASES_SHOWN + 1)
        more, found = len(found) > CASES_SHOWN, found[:CASES_SHOWN]
        repo = Repository(session, postgres=services.store.is_postgres)
        rows = []
        for case in found:
            name = child_name(session, case.child_id) if case.child_id else None
            if name:
                repo.audit(now, visitor.user.email, "viewed", case.child_id or case.deadline_id,
                           f"dashboard drill-down {measure} (deadline {case.deadline_id})")
            rows.append({"case": case, "name": name, "what": KIND_IN_WORDS.get(case.kind, case.kind)})
    return page(request, "dashboard_cases.html", title=MEASURE_WORDS[measure], period=p, rows=rows,
                counted=sum(1 for case in found if case.counted), measure=measure, more=more)
