"""Shaping the report's data (pure): days, the current day, rates, limits, events,
state spans and the per-ISP summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from warmup.app.report import (
    COUNTS,
    Limit,
    build_report,
    limits_of,
    report_end,
    state_spans,
)
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.schedule import Advance, RampStep, Rates, Reactions, Schedule
from warmup.core.model import LaneState

TZ = ZoneInfo("Asia/Tokyo")
NOW = datetime(2030, 1, 4, 3, tzinfo=UTC)
GMAIL = Schedule(
    isp="gmail",
    steps=(
        RampStep(first_day=1, last_day=2, per_hour=10),
        RampStep(first_day=3, last_day=4, per_hour=20),
    ),
    advance=Advance(max_deferral_rate=0.08),
    reactions=Reactions(rates=Rates(min_sample=50)),
)
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)


def _row(ip: str, isp: str, day: date, **counts: int) -> dict[str, Any]:
    return {
        "ip": ip,
        "isp": isp,
        "day": day,
        "ramp_day": counts.pop("ramp_day", 1),
        "allowance_per_hour": 10.0,
        "planned": counts.pop("planned", 240),
        **dict.fromkeys(COUNTS, 0),
        **counts,
    }


def _event(
    ip: str, isp: str, at: datetime, cause: str, old: str, new: str
) -> dict[str, Any]:
    return {
        "ip": ip,
        "isp": isp,
        "at": at,
        "cause": cause,
        "old_state": old,
        "new_state": new,
        "detail": "",
        "reply": "550 5.7.1 <john.doe@gmail.com> policy" if cause == "block" else None,
    }


def _lane(ip: str, isp: str, **values: Any) -> Lane:
    return Lane(ip=ip, isp=isp, **values)


HISTORY = [
    _row(
        "127.0.0.2",
        "gmail",
        date(2030, 1, 1),
        attempted=200,
        delivered=180,
        soft=10,
        hard=6,
        throttle=4,
        complaints=1,
    ),
    _row("127.0.0.2", "gmail", date(2030, 1, 2), attempted=100, delivered=100),
    _row("127.0.0.2", "gmail", date(2030, 1, 3), attempted=40, delivered=40),
]
EVENTS = [
    _event(
        "127.0.0.2",
        "gmail",
        datetime(2030, 1, 2, 18, tzinfo=UTC),
        "throttle",
        "ramping",
        "backed_off",
    ),
    _event(
        "127.0.0.2",
        "gmail",
        datetime(2030, 1, 2, 20, tzinfo=UTC),
        "block",
        "backed_off",
        "paused",
    ),
    _event(
        "127.0.0.2",
        "gmail",
        datetime(2030, 1, 3, 1, tzinfo=UTC),
        "resume",
        "paused",
        "ramping",
    ),
]
LANES = [
    # On 2030-01-03 (already rolled up at a shutdown): not counted twice.
    (
        1,
        _lane(
            "127.0.0.2",
            "gmail",
            ramp_day=3,
            day=date(2030, 1, 3),
            stats=DayStats(attempted=40, delivered=40),
        ),
        20.0,
    ),
    # On a day not rolled up yet: its counters are the current day.
    (
        2,
        _lane(
            "127.0.0.3",
            "gmail",
            ramp_day=3,
            day=date(2030, 1, 4),
            stats=DayStats(attempted=30, delivered=29, hard=1),
            state=LaneState.backed_off,
        ),
        10.0,
    ),
    # An ISP without a schedule of its own uses `default`; nothing sent yet.
    (3, _lane("127.0.0.2", "web.de", day=date(2030, 1, 4)), 5.0),
]


def _report() -> Any:
    return build_report(
        history=HISTORY,
        events=EVENTS,
        lanes=LANES,
        schedules={"gmail": GMAIL, "default": DEFAULT},
        tz=TZ,
        now=NOW,
    )


def test_days_per_lane_with_the_current_day_counted_once() -> None:
    report = _report()
    first, second, web = report.lanes
    assert [d.day.day for d in first.days] == [1, 2, 3]
    assert [d.counts["attempted"] for d in first.days] == [200, 100, 40]
    (today,) = second.days
    assert (today.day, today.ramp_day, today.planned) == (date(2030, 1, 4), 3, 480)
    assert today.counts["hard"] == 1
    assert web.days == () and web.last_ramp_day == 1
    assert (report.first_day, report.last_day) == (date(2030, 1, 1), date(2030, 1, 4))
    assert report.counts["attempted"] == 200 + 100 + 40 + 30
    assert report.planned == 3 * 240 + 480


def test_rates_are_over_the_days_attempts() -> None:
    day = _report().lanes[0].days[0]
    assert day.rate("hard") == pytest.approx(0.03)
    assert day.rate("deferred") == pytest.approx(0.07)
    assert day.rate("complaints") == pytest.approx(0.005)
    empty = build_report(
        history=[_row("1.2.3.4", "gmail", date(2030, 1, 1))],
        events=[],
        lanes=[(1, _lane("1.2.3.4", "gmail"), 1.0)],
        schedules={"gmail": GMAIL},
        tz=TZ,
        now=NOW,
    )
    assert empty.lanes[0].days[0].rate("hard") is None
    assert empty.isps[0].rate("deferred") is None


def test_limits_come_from_the_lanes_schedule() -> None:
    assert limits_of(GMAIL) == (
        Limit(rate_name="hard", value=0.05, effect="steps back"),
        Limit(rate_name="hard", value=0.02, effect="blocks the advance"),
        Limit(rate_name="deferred", value=0.08, effect="blocks the advance"),
        Limit(rate_name="complaints", value=0.003, effect="pauses"),
        Limit(rate_name="complaints", value=0.001, effect="blocks the advance"),
    )
    lanes = _report().lanes
    assert lanes[0].limits == limits_of(GMAIL) and lanes[0].min_sample == 50
    assert lanes[2].limits == limits_of(DEFAULT)
    assert limits_of(None) == limits_of(DEFAULT)


def test_events_are_local_time_and_mask_recipients() -> None:
    report = _report()
    events = report.lanes[0].events
    assert [e.cause for e in events] == ["throttle", "block", "resume"]
    assert events[0].at.tzinfo == TZ and events[0].at.hour == 3
    assert events[1].reply == "550 5.7.1 <j***@gmail.com> policy"
    assert [e.pauses for e in events] == [False, True, False]
    assert report.events == events


def test_state_spans_follow_the_events() -> None:
    report = _report()
    lane = report.lanes[0]
    start = datetime(2030, 1, 1, tzinfo=TZ)
    end = report_end(report)
    assert end == datetime(2030, 1, 5, tzinfo=TZ)
    spans = state_spans(lane, start=start - timedelta(days=3), end=end)
    assert [(s.state, s.start.astimezone(UTC).hour) for s in spans] == [
        ("ramping", 15),  # from 2030-01-01 00:00 local (the first day)
        ("backed_off", 18),
        ("paused", 20),
        ("ramping", 1),
    ]
    assert spans[-1].end == end
    # A lane without events stays in its state; one before `start` is clipped.
    (only,) = state_spans(report.lanes[1], start=start, end=end)
    assert (only.state, only.start) == ("backed_off", datetime(2030, 1, 4, tzinfo=TZ))
    assert state_spans(report.lanes[1], start=end, end=end) == []
    # Starting after some events: the state they left the lane in.
    late = datetime(2030, 1, 2, 21, tzinfo=UTC)
    spans = state_spans(lane, start=late, end=end)
    assert [(s.state, s.start) for s in spans] == [
        ("paused", late),
        ("ramping", datetime(2030, 1, 3, 1, tzinfo=UTC)),
    ]


def test_report_end_without_days_is_the_generation_time() -> None:
    report = build_report(history=[], events=[], lanes=[], schedules={}, tz=TZ, now=NOW)
    assert report_end(report) == NOW
    assert report.first_day is None and report.isps == ()


def test_one_summary_per_isp() -> None:
    gmail, web = _report().isps
    assert (gmail.isp, gmail.lanes, web.isp, web.lanes) == ("gmail", 2, "web.de", 1)
    assert gmail.states == {"ramping": 1, "backed_off": 1}
    assert gmail.ramp_days == (3, 3) and gmail.last_ramp_day == 4
    assert gmail.counts["attempted"] == 370 and gmail.planned == 3 * 240 + 480
    assert (gmail.throttle_events, gmail.pauses, gmail.step_backs) == (1, 1, 0)
    assert gmail.rate("hard") == pytest.approx(7 / 370)
    assert gmail.rate("deferred") == pytest.approx(14 / 370)


def test_a_day_rolled_up_at_shutdown_then_sending_on_counts_the_live_figures() -> None:
    """SIGTERM writes today's row; after the restart the lane goes on counting
    the same day: the report takes the live counters, as status and metrics do."""
    stopped = _row("127.0.0.2", "gmail", date(2030, 1, 3), attempted=40, delivered=40)
    lane = _lane(
        "127.0.0.2",
        "gmail",
        ramp_day=3,
        day=date(2030, 1, 3),
        stats=DayStats(attempted=55, delivered=54, throttle=1),
    )
    report = build_report(
        history=[stopped],
        events=[],
        lanes=[(1, lane, 20.0)],
        schedules={"gmail": GMAIL, "default": DEFAULT},
        tz=TZ,
        now=NOW,
    )
    (today,) = report.lanes[0].days
    assert today.counts["attempted"] == 55 and today.counts["throttle"] == 1
    assert report.counts["attempted"] == 55
