"""What the warming lanes will still send, the overflow budget and its pace."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.overflow import (
    idle_reset_due,
    overflow_budget,
    overflow_pace,
    remaining_in_window,
    window_for,
)
from warmup.core.lanes.schedule import (
    Advance,
    RampStep,
    Reactions,
    Schedule,
    ThrottleReaction,
    Window,
)
from warmup.core.model import LaneState

DAY = date(2030, 1, 2)
OPEN = datetime(2030, 1, 2, 1, 0, tzinfo=UTC)  # window 01:00-01:06 UTC
SIX = timedelta(minutes=6)
SCHEDULE = Schedule(
    isp="gmail",
    window=Window(start=time(1), end=time(1, 6)),
    steps=(
        RampStep(first_day=1, last_day=1, per_hour=600),  # 60 in the window
        RampStep(first_day=2, last_day=9, per_hour=1200),  # 120
    ),
    advance=Advance(min_volume_ratio=0.9),
    reactions=Reactions(throttle=ThrottleReaction(factor=0.5)),
)
TODAY = DayStats()


def _lane(**changes: object) -> Lane:
    base: dict[str, object] = {"ip": "127.0.0.2", "isp": "gmail", "day": DAY}
    return Lane(**(base | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lane", "now", "left"),
    [
        # A new lane at window open (and before it): its whole plan.
        (Lane(ip="127.0.0.2", isp="gmail"), OPEN, 60),
        (Lane(ip="127.0.0.2", isp="gmail"), OPEN - timedelta(hours=3), 60),
        # Half the window gone, 20 sent: 40 planned left, 30 slots left (6 s each).
        (
            _lane(
                stats=DayStats(attempted=20), last_sent_at=OPEN + timedelta(minutes=2)
            ),
            OPEN + timedelta(minutes=3),
            30,
        ),
        # The last slot of the window is gone.
        (
            _lane(
                stats=DayStats(attempted=10),
                last_sent_at=OPEN + timedelta(minutes=5, seconds=58),
            ),
            OPEN + timedelta(minutes=5, seconds=59),
            0,
        ),
        # Plan used up.
        (_lane(stats=DayStats(attempted=60)), OPEN + timedelta(minutes=5), 0),
        # Paused past the window: nothing; paused to mid-window: resumes at half rate.
        (
            _lane(state=LaneState.paused, paused_until=OPEN + timedelta(hours=2)),
            OPEN,
            0,
        ),
        (_lane(state=LaneState.paused, paused_until=None), OPEN, 0),
        (
            _lane(state=LaneState.paused, paused_until=OPEN + timedelta(minutes=3)),
            OPEN,
            15,
        ),
        # Backed off to half: half the slots.
        (_lane(state=LaneState.backed_off, factor=0.5), OPEN, 30),
        # Yesterday's good day: the lane advances at window open (120), before
        # its own tick has closed the day.
        (
            _lane(
                day=DAY - timedelta(days=1),
                stats=DayStats(attempted=60, delivered=60),
                last_sent_at=OPEN - timedelta(hours=23, minutes=55),
            ),
            OPEN,
            120,
        ),
        # Idle past idle_reset: back to day 1 (60), not day 5's 120.
        (
            _lane(
                day=DAY - timedelta(days=40),
                ramp_day=5,
                stats=DayStats(attempted=120, delivered=120),
                last_sent_at=OPEN - timedelta(days=40),
            ),
            OPEN,
            60,
        ),
    ],
)
def test_remaining_in_window(lane: Lane, now: datetime, left: int) -> None:
    assert remaining_in_window(lane, SCHEDULE, now=now, tz=UTC) == left


def test_window_for_is_the_current_or_the_next() -> None:
    assert window_for(OPEN + timedelta(minutes=1), SCHEDULE, UTC) == (OPEN, OPEN + SIX)
    later = OPEN + timedelta(hours=1)
    assert window_for(later, SCHEDULE, UTC) == (
        OPEN + timedelta(days=1),
        OPEN + timedelta(days=1) + SIX,
    )


@pytest.mark.parametrize(
    ("queued", "left", "held", "budget"),
    [
        (180, 60, 0, 120),  # window open: 3R queued, R for the warming lane
        (130, 60, 50, 120),  # claimed mail is not counted twice
        (50, 60, 0, 0),  # the warming lane needs all of it
        (10, 20, 40, 10),  # holding more than it will send: all queued is excess
    ],
)
def test_overflow_budget(queued: int, left: int, held: int, budget: int) -> None:
    assert (
        overflow_budget(queued=queued, warming_left=left, warming_held=held) == budget
    )


def test_overflow_pace_spreads_the_rest_over_the_time_left() -> None:
    end = OPEN + SIX
    assert overflow_pace(share=110, held=10, now=OPEN, window_end=end) == 1200.0
    assert overflow_pace(share=0, held=0, now=OPEN, window_end=end) == 0.0
    assert overflow_pace(share=5, held=0, now=end, window_end=end) == 0.0


def test_idle_reset_due() -> None:
    idle = _lane(ramp_day=5, last_sent_at=OPEN - timedelta(days=31))
    assert idle_reset_due(idle, SCHEDULE, OPEN)
    assert not idle_reset_due(
        _lane(ramp_day=1, last_sent_at=idle.last_sent_at), SCHEDULE, OPEN
    )
    assert not idle_reset_due(_lane(ramp_day=5, last_sent_at=OPEN), SCHEDULE, OPEN)
    assert not idle_reset_due(_lane(ramp_day=5), SCHEDULE, OPEN)
