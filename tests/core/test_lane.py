"""The lane state machine: table tests plus hypothesis invariants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup.core.lanes.lane import (
    DayStats,
    Lane,
    WindowCounts,
    close_day,
    judge_window,
    lane_rate,
    new_lane,
    on_reply,
    resume,
)
from warmup.core.lanes.rolling import RollingWindow
from warmup.core.lanes.schedule import (
    BlockReaction,
    RampStep,
    Rates,
    Reactions,
    Schedule,
    ThrottleReaction,
)
from warmup.core.model import LaneState, Verdict

NOW = datetime(2030, 1, 1, 1, tzinfo=UTC)
NEXT_WINDOW = NOW + timedelta(hours=24)
SCHEDULE = Schedule(
    isp="gmail",
    steps=(
        RampStep(first_day=1, last_day=3, per_hour=60),
        RampStep(first_day=4, last_day=6, per_hour=120),
        RampStep(first_day=7, last_day=9, per_hour=240),
    ),
    reactions=Reactions(
        throttle=ThrottleReaction(
            factor=0.5,
            hold=timedelta(hours=1),
            recover_step=0.25,
            recover_every=timedelta(hours=1),
            pause_after=3,
        ),
        block=BlockReaction(pause_for=timedelta(hours=4)),
        rates=Rates(min_sample=100),
    ),
)


def _day(**counts: int) -> DayStats:
    return DayStats(**counts)


def test_a_throttle_halves_at_once_and_holds_then_recovers_stepwise() -> None:
    lane, events = on_reply(
        Lane(ip="a", isp="gmail", day=date(2030, 1, 1)),
        Verdict.throttle,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NEXT_WINDOW,
        reply="421 4.7.28",
    )
    assert lane.state is LaneState.backed_off
    assert lane_rate(lane, SCHEDULE) == 30
    assert [(e.cause, e.old_state, e.new_state) for e in events] == [
        ("throttle", LaneState.ramping, LaneState.backed_off)
    ]
    assert events[0].reply == "421 4.7.28"
    held, _ = resume(lane, now=NOW + timedelta(minutes=59), schedule=SCHEDULE)
    assert held == lane
    rates = []
    for hours in (1, 2, 3):
        lane, _ = resume(lane, now=NOW + timedelta(hours=hours), schedule=SCHEDULE)
        rates.append(lane_rate(lane, SCHEDULE))
    assert rates == [45, 60, 60]
    assert lane.state is LaneState.ramping


def test_repeated_throttles_in_one_window_pause_until_the_next() -> None:
    lane = Lane(ip="a", isp="gmail")
    causes = []
    for minute in range(3):
        lane, events = on_reply(
            lane,
            Verdict.throttle,
            now=NOW + timedelta(minutes=minute),
            schedule=SCHEDULE,
            next_window=NEXT_WINDOW,
        )
        causes += [(e.cause, e.new_state) for e in events]
    assert causes[-1] == ("throttle", LaneState.paused)
    assert lane.paused_until == NEXT_WINDOW
    assert lane_rate(lane, SCHEDULE) == 0
    still, _ = resume(lane, now=NEXT_WINDOW - timedelta(seconds=1), schedule=SCHEDULE)
    assert still.state is LaneState.paused
    back, events = resume(lane, now=NEXT_WINDOW, schedule=SCHEDULE)
    assert back.state is LaneState.backed_off and back.throttles == 0
    assert events[0].cause == "resume"


def test_a_block_pauses_for_the_configured_time() -> None:
    lane, events = on_reply(
        Lane(ip="a", isp="gmail"),
        Verdict.block,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NEXT_WINDOW,
        reply="550 5.7.1 blocked",
    )
    assert lane.state is LaneState.paused
    assert lane.paused_until == NOW + timedelta(hours=4)
    assert events[0].cause == "block"


@pytest.mark.parametrize(
    ("stats", "planned", "cause", "ramp_day"),
    [
        (_day(attempted=240, delivered=240), 240, "advance", 3),
        (_day(attempted=100, delivered=100), 240, "repeat", 2),  # too little volume
        (_day(attempted=240, delivered=210, soft=30), 240, "repeat", 2),  # deferrals
        # A bad day repeats; stepping back is the rolling window's (rule 7).
        (_day(attempted=240, delivered=200, hard=40), 240, "repeat", 2),
        (_day(attempted=20, delivered=18, hard=2), 20, "advance", 3),  # small sample
    ],
)
def test_day_close(stats: DayStats, planned: int, cause: str, ramp_day: int) -> None:
    lane = Lane(
        ip="a",
        isp="gmail",
        ramp_day=2,
        day=date(2030, 1, 1),
        stats=stats,
        last_sent_at=NOW,
    )
    closed, events = close_day(
        lane, new_day=date(2030, 1, 2), now=NOW, planned=planned, schedule=SCHEDULE
    )
    assert [e.cause for e in events] == [cause]
    assert closed.ramp_day == ramp_day
    assert closed.stats == DayStats() and closed.day == date(2030, 1, 2)


@pytest.mark.parametrize(
    ("counts", "cause", "state", "ramp_day"),
    [
        (WindowCounts(attempted=99, hard=50, complaints=9), None, "ramping", 8),
        (WindowCounts(attempted=1000, complaints=3), None, "ramping", 8),
        (WindowCounts(attempted=1000, complaints=4), "complaint_rate", "paused", 8),
        (WindowCounts(attempted=1000, hard=50), None, "ramping", 8),
        (WindowCounts(attempted=1000, hard=51), "step_back", "ramping", 4),
        (
            WindowCounts(attempted=1000, hard=90, complaints=9),
            "complaint_rate",
            "paused",
            8,
        ),
    ],
)
def test_rolling_rates(
    counts: WindowCounts, cause: str | None, state: str, ramp_day: int
) -> None:
    """Rule 7 on the last 24 h: at least min_sample (100) attempts; complaints over
    0.3 % pause, else hard bounces over 5 % step the ramp back one step."""
    lane = Lane(ip="a", isp="gmail", ramp_day=8, day=date(2030, 1, 1))
    judged, events = judge_window(lane, counts, now=NOW, schedule=SCHEDULE)
    assert [e.cause for e in events] == ([cause] if cause else [])
    assert (judged.state.value, judged.ramp_day) == (state, ramp_day)


def test_the_rolling_window_forgets_what_is_older_than_its_span() -> None:
    window = RollingWindow(timedelta(hours=24))
    for minute in range(200):
        window.add_reply(NOW + timedelta(minutes=minute), Verdict.delivered)
    window.add_reply(NOW + timedelta(minutes=200), Verdict.hard)
    window.add_late(NOW + timedelta(minutes=201), Verdict.feedback)
    window.add_late(NOW + timedelta(minutes=202), Verdict.hard)
    assert window.counts(NOW + timedelta(hours=3, minutes=30)) == WindowCounts(
        attempted=201, hard=2, complaints=1
    )
    later = NOW + timedelta(hours=24, minutes=100)  # minutes 0-100 are out
    assert window.counts(later) == WindowCounts(attempted=100, hard=2, complaints=1)
    window.clear()
    assert window.counts(later) == WindowCounts()


def test_a_bad_day_no_longer_pauses_at_close_and_idle_lanes_start_over() -> None:
    stats = _day(attempted=1000, delivered=1000, complaints=5)
    lane = Lane(
        ip="a",
        isp="gmail",
        ramp_day=5,
        day=date(2030, 1, 1),
        stats=stats,
        last_sent_at=NOW,
    )
    closed, events = close_day(
        lane, new_day=date(2030, 1, 2), now=NOW, planned=1000, schedule=SCHEDULE
    )
    assert closed.state is LaneState.ramping and events[0].cause == "repeat"
    idle = Lane(
        ip="a",
        isp="gmail",
        ramp_day=8,
        day=date(2030, 1, 1),
        last_sent_at=NOW - timedelta(days=31),
    )
    fresh, events = close_day(
        idle, new_day=date(2030, 2, 2), now=NOW, planned=0, schedule=SCHEDULE
    )
    assert fresh.ramp_day == 1 and events[0].cause == "idle_reset"


def test_past_the_last_step_the_lane_is_warmed() -> None:
    lane = Lane(
        ip="a",
        isp="gmail",
        ramp_day=9,
        day=date(2030, 1, 1),
        stats=_day(attempted=960, delivered=960),
        last_sent_at=NOW,
    )
    closed, _ = close_day(
        lane, new_day=date(2030, 1, 2), now=NOW, planned=960, schedule=SCHEDULE
    )
    assert closed.state is LaneState.warmed and lane_rate(closed, SCHEDULE) == 240
    assert (
        new_lane("b", "gmail", warmed=True, schedule=SCHEDULE).state is LaneState.warmed
    )


verdicts = st.sampled_from(
    [Verdict.delivered, Verdict.soft, Verdict.hard, Verdict.throttle, Verdict.block]
)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(verdicts, st.integers(0, 7200)), max_size=60),
    ramp_day=st.integers(1, 12),
)
def test_allowance_never_exceeds_the_schedule_and_backoff_never_raises_it(
    events: list[tuple[Verdict, int]], ramp_day: int
) -> None:
    lane = Lane(ip="a", isp="gmail", ramp_day=ramp_day)
    now = NOW
    for verdict, seconds in events:
        now += timedelta(seconds=seconds)
        lane, _ = resume(lane, now=now, schedule=SCHEDULE)
        before = lane_rate(lane, SCHEDULE)
        lane, _ = on_reply(
            lane,
            verdict,
            now=now,
            schedule=SCHEDULE,
            next_window=now + timedelta(hours=20),
        )
        after = lane_rate(lane, SCHEDULE)
        assert 0 <= after <= SCHEDULE.per_hour(lane.ramp_day)
        if verdict in (Verdict.throttle, Verdict.block):
            assert after <= before  # backing off never raises the allowance
        recovered, _ = resume(lane, now=now + timedelta(days=2), schedule=SCHEDULE)
        assert lane_rate(recovered, SCHEDULE) <= SCHEDULE.per_hour(lane.ramp_day)


@settings(max_examples=100, deadline=None)
@given(days=st.integers(1, 15))
def test_a_healthy_lane_follows_the_ramp_exactly(days: int) -> None:
    lane = Lane(ip="a", isp="gmail", day=date(2030, 1, 1), last_sent_at=NOW)
    rates = []
    for offset in range(days):
        planned = SCHEDULE.per_hour(lane.ramp_day) * 4
        rates.append(lane_rate(lane, SCHEDULE))
        lane = Lane(
            ip="a",
            isp="gmail",
            ramp_day=lane.ramp_day,
            state=lane.state,
            day=lane.day,
            last_sent_at=NOW + timedelta(days=offset),
            stats=DayStats(attempted=planned, delivered=planned),
        )
        lane, _ = close_day(
            lane,
            new_day=date(2030, 1, 2) + timedelta(days=offset),
            now=NOW + timedelta(days=offset),
            planned=planned,
            schedule=SCHEDULE,
        )
    assert rates == [SCHEDULE.per_hour(d) for d in range(1, days + 1)]
