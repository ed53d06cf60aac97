"""The report page without a browser: structure, escaping, an empty database."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from warmup.adapters.report_html import render_html
from warmup.app.report import COUNTS, Report, build_report
from warmup.core.auth.dmarc import AuthDay
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.model import LaneState

TZ = ZoneInfo("UTC")
NOW = datetime(2030, 1, 3, 12, tzinfo=UTC)
SCHEDULE = Schedule(isp="gmail", steps=(RampStep(first_day=1, last_day=2, per_hour=5),))


def _report() -> Report:
    day = {"ip": "10.0.0.1", "isp": "gmail", "ramp_day": 3, "allowance_per_hour": 5.0}
    day |= {"planned": 120, **dict.fromkeys(COUNTS, 0), "attempted": 100}
    day |= {"delivered": 90, "throttle": 10, "day": date(2030, 1, 1)}
    event = {
        "ip": "10.0.0.1",
        "isp": "gmail",
        "at": datetime(2030, 1, 1, 3, tzinfo=UTC),
        "cause": "throttle",
        "old_state": "ramping",
        "new_state": "backed_off",
        "detail": "allowance x0.50",
        "reply": "421 4.7.28 <script>alert(1)</script> for ann@example.com",
    }
    lanes = [
        (1, Lane(ip="10.0.0.1", isp="gmail", ramp_day=3, state=LaneState.warmed), 5.0),
        # A lane that has not sent yet: no days, no chart points.
        (2, Lane(ip="10.0.0.2", isp="<b>odd</b>", stats=DayStats()), 1.0),
    ]
    return build_report(
        history=[day],
        events=[event],
        lanes=lanes,
        schedules={"gmail": SCHEDULE},
        tz=TZ,
        now=NOW,
    )


def _figures(page: str) -> dict[str, dict[str, Any]]:
    """The figure JSON handed to Plotly.newPlot, by div id."""
    found = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*(\[.*?\]),\s*\{', page):
        found[match.group(1)] = {"data": json.loads(match.group(2))}
    return found


def test_page_has_every_chart_and_the_summary_table() -> None:
    page = render_html(_report(), title="t & <t>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>t &amp; &lt;t&gt;</title>" in page
    assert 'id="isp-summary"' in page and 'id="headline"' in page
    figures = _figures(page)
    assert set(figures) == {
        "chart-overview",
        "chart-timeline",
        "chart-lane-10-0-0-1-gmail",
        "chart-lane-10-0-0-2--b-odd--b-",
    }
    names = {trace["name"] for trace in figures["chart-lane-10-0-0-1-gmail"]["data"]}
    assert {"planned", "sent: delivered", "event: throttle", "throttle %"} <= names
    assert "hard limit 5.0%: steps back" in names
    # The warmed lane past its 2-day ramp says so.
    assert "ramp done (2 days)" in page and "3 (ramp done: 2 days)" in page


def test_text_from_the_database_is_escaped_and_recipients_masked() -> None:
    page = render_html(_report())
    assert "<script>alert(1)" not in page
    assert "ann@example.com" not in page and "a***@example.com" in page
    assert '<tr data-isp="&lt;b&gt;odd&lt;/b&gt;">' in page


def test_a_long_report_has_date_ticks_and_events_without_detail() -> None:
    day = {"ip": "10.0.0.1", "isp": "gmail", "ramp_day": 1, "allowance_per_hour": 5.0}
    day |= {"planned": 10, **dict.fromkeys(COUNTS, 0), "attempted": 10}
    history = [day | {"day": date(2030, 1, n)} for n in range(1, 21)]
    event = {
        "ip": "10.0.0.1",
        "isp": "gmail",
        "at": datetime(2030, 1, 5, tzinfo=UTC),
        "cause": "resume",
        "old_state": "paused",
        "new_state": "ramping",
        "detail": None,
        "reply": None,
    }
    report = build_report(
        history=history,
        events=[event],
        lanes=[(1, Lane(ip="10.0.0.1", isp="gmail"), 5.0)],
        schedules={"gmail": SCHEDULE},
        tz=TZ,
        now=NOW,
    )
    page = render_html(report)
    assert "event: resume" in page and '"tickformat":"%b %d"' in page


def test_an_empty_database_gives_a_page_too() -> None:
    empty = build_report(history=[], events=[], lanes=[], schedules={}, tz=TZ, now=NOW)
    page = render_html(empty)
    assert "no sending days yet" in page
    assert set(_figures(page)) == {"chart-overview", "chart-timeline"}


def test_dmarc_figures_get_a_pass_rate_chart() -> None:
    days = [
        AuthDay(ip="10.0.0.1", day=date(2030, 1, 1), messages=200, dmarc_pass=50),
        AuthDay(ip="10.0.0.1", day=date(2030, 1, 2), messages=200, dmarc_pass=200),
        AuthDay(ip="10.0.0.2", day=date(2030, 1, 1), messages=10, dmarc_pass=10),
    ]
    report = build_report(
        history=[],
        events=[],
        lanes=[],
        schedules={},
        tz=TZ,
        now=NOW,
        auth=days,
        auth_min_pass_rate=0.98,
    )
    figures = _figures(render_html(report))
    auth = figures["chart-auth"]
    by_name = {trace["name"]: trace for trace in auth["data"]}
    assert by_name["10.0.0.1"]["y"] == [25.0, 100.0]
    assert by_name["10.0.0.2"]["y"] == [100.0]
    assert by_name["hold under 98 %"]["y"] == [98.0, 98.0]
