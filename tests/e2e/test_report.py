"""`warmup report` over the database of a real (small) `warmup demo` in which the
simulated Microsoft throttled: the file it writes, and what Chromium renders."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.e2e.browser import charts, dump_dom, png_size, screenshot
from warmup.cli import cli

LANE_SERIES = {
    "planned",
    "sent: delivered",
    "sent: deferred",
    "sent: bounced",
    "soft %",
    "throttle %",
    "hard %",
    "complaints %",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A demo long and fast enough for the strict simulated Microsoft to throttle."""
    directory = tmp_path_factory.mktemp("report-demo")
    args = ["demo", "--days", "6", "--ips", "2", "--recipients", "3000"]
    args += ["--scale", "0.15", "--seed", "1", "--dir", str(directory)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return directory, result.output


def _query(directory: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(directory / "warmup.db")) as db:
        return db.execute(sql).fetchall()


def _lane_id(ip: str, isp: str) -> str:
    return f"chart-lane-{ip.replace('.', '-')}-{isp}"


def test_the_demo_writes_a_report_and_prints_its_path(demo: tuple[Path, str]) -> None:
    directory, output = demo
    report = directory / "report.html"
    assert report.stat().st_size > 1_000_000  # plotly.js is inside
    assert str(report) in " ".join(output.split())  # wherever the console wrapped


def test_report_command_writes_one_self_contained_file(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    directory, _ = demo
    out = tmp_path / "out.html"
    args = ["-c", str(directory / "config.yaml"), "report", "--html", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    page = out.read_text()
    # Nothing is loaded from elsewhere: no script, style or image by reference.
    assert re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=", page) == []
    assert 'id="isp-summary"' in page and "Plotly.newPlot" in page
    lanes = _query(directory, "SELECT ip, isp FROM lanes")
    assert len(lanes) == 8
    for ip, isp in lanes:
        assert f'id="{_lane_id(ip, isp)}"' in page


def test_report_needs_an_output_file(demo: tuple[Path, str]) -> None:
    directory, _ = demo
    result = CliRunner().invoke(cli, ["-c", str(directory / "config.yaml"), "report"])
    assert result.exit_code == 2
    assert "--html" in result.output


def test_report_into_a_missing_directory_is_a_clear_error(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    directory, _ = demo
    out = tmp_path / "missing" / "r.html"
    args = ["-c", str(directory / "config.yaml"), "report", "--html", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "cannot write the report" in result.output


@pytest.mark.browser
def test_chromium_renders_every_chart_with_its_series(
    demo: tuple[Path, str], tmp_path: Path
) -> None:
    directory, _ = demo
    page = directory / "report.html"
    dom = dump_dom(page, tmp_path / "profile")
    drawn = charts(dom)
    lanes = _query(directory, "SELECT ip, isp FROM lanes")
    days: dict[str, int] = dict(
        _query(
            directory,
            "SELECT lanes.ip || ' ' || lanes.isp, count(*) FROM lane_days"
            " JOIN lanes ON lanes.id = lane_days.lane_id GROUP BY lanes.id",
        )
    )
    throttled = {
        (ip, isp)
        for ip, isp in _query(
            directory,
            "SELECT DISTINCT ip, isp FROM lane_events JOIN lanes"
            " ON lanes.id = lane_events.lane_id WHERE cause = 'throttle'",
        )
    }
    assert throttled, "the demo is meant to show Microsoft throttling"
    assert {isp for _, isp in throttled} == {"microsoft"}
    assert set(drawn) == {"chart-overview", "chart-timeline"} | {
        _lane_id(ip, isp) for ip, isp in lanes
    }
    for chart in drawn.values():
        assert chart.svgs >= 1, chart.id
    for ip, isp in lanes:
        chart = drawn[_lane_id(ip, isp)]
        legend = set(chart.legend)
        assert legend >= LANE_SERIES, (chart.id, legend)
        assert any("limit" in name and "steps back" in name for name in legend)
        assert ("event: throttle" in legend) == ((ip, isp) in throttled), chart.id
        assert chart.traces["bars"] == 3
        # A bar per outcome per day at most, plus the plan's and rates' markers.
        assert chart.points >= days[f"{ip} {isp}"], chart.id
    overview = set(drawn["chart-overview"].legend)
    for isp in ("gmail", "microsoft", "yahoo", "apple"):
        assert {f"{isp} sent", f"{isp} planned"} <= overview
    timeline = set(drawn["chart-timeline"].legend)
    assert {"state: ramping", "state: backed off", "event: throttle"} <= timeline
    assert dom.count('<tr data-isp="') == 4

    shot = tmp_path / "report.png"
    screenshot(page, shot, tmp_path / "profile")
    assert png_size(shot) == (1400, 3000)
    # A blank page compresses to a few kB; charts and tables do not.
    assert shot.stat().st_size > 100_000
    print(f"screenshot: {shot}")
