"""`warmup status` over the SQLite database a small `warmup demo` leaves behind."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from warmup.cli import cli
from warmup.cli.status_cmd import lane_record, status
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.model import LaneState

IPS = {"127.0.0.2", "127.0.0.3"}
ISPS = {"gmail", "microsoft", "yahoo", "apple"}
LANE_FIELDS = {
    "kind",
    "ip",
    "owner",
    "idle_reset",
    "isp",
    "state",
    "paused_until",
    "operator_paused",
    "opens_at",
    "problem",
    "ramp_day",
    "last_ramp_day",
    "allowance_per_hour",
    "schedule_per_hour",
    "backoff_factor",
    "local_day",
    "sent",
    "planned",
    "delivered",
    "soft",
    "throttle",
    "hard",
    "block",
    "deferred",
    "complaints",
    "delivered_pct",
    "hard_pct",
    "deferred_pct",
    "last_sent_at",
    "last_event",
}
COUNTS = ("queued", "sending", "delivered", "bounced", "suppressed", "expired")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("status") / "demo"
    args = ["demo", "--days", "3", "--ips", "2", "--recipients", "2000"]
    args += ["--scale", "0.05", "--dir", str(directory)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def project(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the demo (config points at the copied database)."""
    root = tmp_path / "demo"
    shutil.copytree(demo_dir, root)
    config = root / "config.yaml"
    config.write_text(config.read_text().replace(str(demo_dir), str(root)))
    return root


def run_status(project: Path, *args: str) -> Result:
    config = str(project / "config.yaml")
    runner = CliRunner(env={"COLUMNS": "250"})
    return runner.invoke(status, list(args), obj={"config_path": config})


def json_status(project: Path, *args: str) -> tuple[list[dict[str, Any]], Any]:
    result = run_status(project, "--json", *args)
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert objects[-1]["kind"] == "campaigns"
    assert all(o["kind"] == "lane" for o in objects[:-1])
    return objects[:-1], objects[-1]


def query(project: Path, sql: str, *params: Any) -> list[Any]:
    with closing(sqlite3.connect(project / "warmup.db")) as db:
        rows = db.execute(sql, params).fetchall()
        db.commit()
    return rows


def test_json_has_every_lane_as_in_the_database(project: Path) -> None:
    lanes, _ = json_status(project)
    assert len(lanes) == 8
    assert {(o["ip"], o["isp"]) for o in lanes} == {(i, s) for i in IPS for s in ISPS}
    stored = {
        (ip, isp): rest
        for ip, isp, *rest in query(
            project,
            "SELECT ip, isp, state, ramp_day, day_attempted, day_delivered,"
            " day_hard, allowance_per_hour FROM lanes",
        )
    }
    for lane in lanes:
        assert set(lane) == LANE_FIELDS
        state, ramp_day, sent, delivered, hard, allowance = stored[
            lane["ip"], lane["isp"]
        ]
        assert (lane["state"], lane["ramp_day"]) == (state, ramp_day)
        assert (lane["sent"], lane["delivered"], lane["hard"]) == (
            sent,
            delivered,
            hard,
        )
        assert lane["allowance_per_hour"] == pytest.approx(allowance)
        assert lane["deferred"] == lane["soft"] + lane["throttle"]
        assert 1 <= lane["ramp_day"] <= lane["last_ramp_day"] + 1


def test_last_event_is_the_newest_of_its_lane(project: Path) -> None:
    lanes, _ = json_status(project)
    newest = {
        (ip, isp): (cause, detail)
        for ip, isp, cause, detail in query(
            project,
            "SELECT l.ip, l.isp, e.cause, e.detail FROM lane_events e"
            " JOIN lanes l ON l.id = e.lane_id"
            " WHERE e.id IN (SELECT max(id) FROM lane_events GROUP BY lane_id)",
        )
    }
    assert newest, "the demo should have recorded lane events"
    for lane in lanes:
        event = lane["last_event"]
        if (lane["ip"], lane["isp"]) not in newest:
            assert event is None
            continue
        assert (event["cause"], event["detail"]) == newest[lane["ip"], lane["isp"]]


def test_campaign_summary_adds_up(project: Path) -> None:
    _, summary = json_status(project)
    [campaign] = summary["campaigns"]
    assert campaign["name"] == "demo"
    assert sum(campaign[name] for name in COUNTS) == campaign["total"] == 2000
    assert campaign["pending"] == campaign["queued"] + campaign["sending"]
    assert campaign["delivered"] > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--ip", "127.0.0.3"), {("127.0.0.3", isp) for isp in ISPS}),
        (("--isp", "gmail"), {(ip, "gmail") for ip in IPS}),
        (("--ip", "127.0.0.2", "--isp", "yahoo"), {("127.0.0.2", "yahoo")}),
        (
            ("--isp", "gmail", "--isp", "apple"),
            {(ip, isp) for ip in IPS for isp in ("gmail", "apple")},
        ),
        (("--ip", "192.0.2.1"), set()),
    ],
)
def test_filters(
    project: Path, args: tuple[str, ...], expected: set[tuple[str, str]]
) -> None:
    lanes, summary = json_status(project, *args)
    assert {(o["ip"], o["isp"]) for o in lanes} == expected
    assert len(lanes) == len(expected)
    assert summary["campaigns"][0]["total"] == 2000


def test_problems_come_first(project: Path) -> None:
    update = "UPDATE lanes SET {} WHERE ip = ? AND isp = ?"
    query(project, update.format("state = 'paused'"), "127.0.0.3", "yahoo")
    query(project, update.format("state = 'backed_off'"), "127.0.0.2", "apple")
    rates = "day_attempted = 500, day_delivered = 400, day_hard = 100"
    query(project, update.format(rates), "127.0.0.3", "microsoft")
    lanes, _ = json_status(project)
    head = [(o["ip"], o["isp"], o["problem"]) for o in lanes[:3]]
    assert head == [
        ("127.0.0.3", "yahoo", "paused"),
        ("127.0.0.2", "apple", "backed_off"),
        ("127.0.0.3", "microsoft", "high_rates"),
    ]
    assert lanes[2]["hard_pct"] == 20.0
    assert lanes[2]["delivered_pct"] == 80.0
    assert all(o["problem"] is None for o in lanes[3:])
    table = run_status(project)
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if "127.0.0." in line]
    assert len(rows) == 8
    assert "paused" in rows[0]
    assert "backed_off" in rows[1]


def test_table_lists_lanes_and_campaigns(project: Path) -> None:
    result = run_status(project, "--isp", "gmail")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "127.0.0." in line]
    assert len(rows) == 2
    assert all("gmail" in row for row in rows)
    assert "campaigns" in result.output
    assert "demo" in result.output


def test_watch_refreshes_a_bounded_number_of_times(project: Path) -> None:
    result = run_status(project, "--watch", "0.1", "--watch-iterations", "2")
    assert result.exit_code == 0, result.output
    # Not a terminal: one whole table per refresh, not a redraw in place.
    assert result.output.count("lanes (8)") == 2


def test_watch_and_json_do_not_mix(project: Path) -> None:
    result = run_status(project, "--watch", "1", "--json")
    assert result.exit_code == 2
    assert "cannot be combined" in result.output


def test_empty_database(project: Path) -> None:
    config = project / "config.yaml"
    config.write_text(
        config.read_text().replace("warmup.db", "empty.db"),
    )
    lanes, summary = json_status(project)
    assert lanes == []
    assert summary == {"kind": "campaigns", "campaigns": []}


def test_last_event_reply_is_shortened_in_the_table(project: Path) -> None:
    reply = "421 4.7.28 Our system has detected an unusual rate of mail " * 3
    [(lane_id,)] = query(
        project, "SELECT id FROM lanes WHERE ip = ? AND isp = ?", "127.0.0.2", "gmail"
    )
    query(
        project,
        "INSERT INTO lane_events (lane_id, at, cause, old_state, new_state, reply)"
        " VALUES (?, '2026-12-01 03:04:00.000000', 'throttle', 'ramping',"
        " 'backed_off', ?)",
        lane_id,
        reply,
    )
    lanes, _ = json_status(project, "--ip", "127.0.0.2", "--isp", "gmail")
    assert lanes[0]["last_event"]["cause"] == "throttle"
    assert lanes[0]["last_event"]["reply"] == reply
    result = run_status(project, "--ip", "127.0.0.2", "--isp", "gmail")
    [row] = [line for line in result.output.splitlines() if "127.0.0." in line]
    assert "throttle · 421 4.7.28 Our system" in row
    assert "…" in row
    assert reply.strip() not in row


def test_an_idle_reset_shows_before_the_lane_next_sends() -> None:
    """Idle past the schedule's idle_reset, an overflow lane as much as any: status
    shows ramp day 1 and its allowance now, not the day it will never send at."""
    schedule = Schedule(
        isp="gmail",
        steps=(
            RampStep(first_day=1, last_day=3, per_hour=60),
            RampStep(first_day=4, last_day=9, per_hour=600),
        ),
    )
    now = datetime(2030, 3, 1, tzinfo=UTC)
    idle = Lane(
        ip="127.0.0.9",
        isp="gmail",
        state=LaneState.warmed,
        ramp_day=10,
        last_sent_at=now - timedelta(days=31),
    )
    record = lane_record(idle, 600.0, schedule, None, now=now)
    assert (record["ramp_day"], record["state"]) == (1, "ramping")
    assert record["allowance_per_hour"] == 60
    assert record["idle_reset"] is True
    fresh = replace(idle, last_sent_at=now - timedelta(days=1))
    record = lane_record(fresh, 600.0, schedule, None, now=now)
    assert (record["ramp_day"], record["idle_reset"]) == (10, False)


def test_in_a_pipe_no_line_is_longer_than_80_and_json_is_unchanged(
    project: Path,
) -> None:
    """Not a terminal and no COLUMNS: rich's 80 columns. The table keeps its
    figures; the last events go below it; --json does not depend on the width."""
    config = str(project / "config.yaml")
    piped = CliRunner(env={"COLUMNS": None}).invoke(
        status, [], obj={"config_path": config}
    )
    assert piped.exit_code == 0, piped.output
    lines = piped.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == "lanes (8)"
    assert lines[1].split()[:3] == ["ip", "isp", "state"]
    # One note per lane below the table, wrapped onto further lines when long
    # (a closed window's "opens 01:00 Asia/Tokyo, in 20 h" comes before the
    # last event at some hours of the day).
    below: list[str] = []
    for line in lines:
        if line.startswith("  127.0.0."):
            below.append(line)
        elif below and line.startswith("   "):
            below[-1] += " " + line.strip()
    assert len(below) >= 8 and all("last event" in note for note in below)
    narrow = CliRunner(env={"COLUMNS": None}).invoke(
        status, ["--json"], obj={"config_path": config}
    )
    wide = run_status(project, "--json")
    assert narrow.output == wide.output
