"""Lane health is judged in one place (core.lanes.health): `warmup status`, the
report and the metrics say the same of the same lanes in the same store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import warmup
from warmup.adapters.db.store import SQLStore
from warmup.adapters.metrics import MetricsExporter
from warmup.app.report import gather_report
from warmup.cli.status_cmd import _snapshot
from warmup.config.files import load_config
from warmup.core.lanes.health import lane_problem
from warmup.core.lanes.lane import DayStats, Lane, rates_over
from warmup.core.lanes.schedule import Advance, RampStep, Rates, Reactions, Schedule
from warmup.core.model import LaneState
from warmup.testing.clock import FakeClock

NOW = datetime(2030, 1, 10, 12, tzinfo=UTC)
EXAMPLE = Path(warmup.__file__).parent / "config.example.yaml"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
BUSY = DayStats(attempted=200, delivered=200)
DEFERRING = DayStats(attempted=200, delivered=170, soft=30)  # 15 % deferred

LANES = {
    Lane(ip="10.0.0.1", isp="gmail", state=LaneState.paused): "paused",
    Lane(ip="10.0.0.1", isp="yahoo", state=LaneState.backed_off, factor=0.5): (
        "backed_off"
    ),
    Lane(ip="10.0.0.2", isp="gmail", day=date(2030, 1, 10), stats=DEFERRING): (
        "high_rates"
    ),
    Lane(ip="10.0.0.2", isp="yahoo", day=date(2030, 1, 10), stats=BUSY): None,
    # Idle for years: the next day starts afresh, whatever the old one said.
    Lane(
        ip="10.0.0.3",
        isp="gmail",
        state=LaneState.backed_off,
        factor=0.5,
        ramp_day=5,
        last_sent_at=LONG_AGO,
    ): None,
}


async def test_status_report_and_metrics_agree(store: SQLStore) -> None:
    config = load_config(EXAMPLE)
    for lane in LANES:
        await store.ensure_lane(lane, NOW)
    expected = {(lane.ip, lane.isp): problem for lane, problem in LANES.items()}

    snapshot = await _snapshot(store, config, (), ())
    shown = {(r["ip"], r["isp"]): r["problem"] for r in snapshot.lanes}

    report = await gather_report(store, schedules=config.schedules, tz=UTC, now=NOW)
    reported = {(lane.ip, lane.isp): lane.problem for lane in report.lanes}

    exporter = MetricsExporter(store, FakeClock(NOW), schedules=config.schedules)
    assert await exporter.refresh()
    body = generate_latest(exporter.registry).decode()
    [family] = [
        f
        for f in text_string_to_metric_families(body)
        if f.name == "warmup_lane_problem"
    ]
    exported: dict[tuple[str, str], str | None] = dict.fromkeys(expected)
    for sample in family.samples:
        if sample.value == 1:
            key = (sample.labels["ip"], sample.labels["isp"])
            exported[key] = sample.labels["problem"]

    assert shown == reported == exported == expected
    by_isp = {summary.isp: summary.problems for summary in report.isps}
    assert by_isp["gmail"] == {"paused": 1, "high_rates": 1}


def test_high_rates_is_the_rule_that_holds_a_day_back() -> None:
    """A day over advance.max_deferral_rate is held back at the day close, so
    it is a problem too (the deprecated rates.deferral_rate caps that knob when
    the config is loaded)."""
    schedule = Schedule(
        isp="gmail",
        steps=(RampStep(first_day=1, last_day=3, per_hour=60),),
        advance=Advance(max_deferral_rate=0.10),
        reactions=Reactions(rates=Rates()),
    )
    lane = Lane(ip="10.0.0.1", isp="gmail", stats=DEFERRING)
    assert rates_over(lane.stats, schedule.advance, schedule.reactions.rates) == [
        "deferred"
    ]
    assert lane_problem(lane, schedule, NOW) == "high_rates"
    few = Lane(ip="10.0.0.1", isp="gmail", stats=DayStats(attempted=20, soft=10))
    assert lane_problem(few, schedule, NOW) is None  # under min_sample
    assert (
        lane_problem(Lane(ip="10.0.0.1", isp="gmail", state=LaneState.paused), None)
        == "paused"
    )
