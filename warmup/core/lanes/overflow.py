"""What the overflow IPs of an ISP may take, and how evenly (all pure; time passed in).

Rules:

1. A warming lane will still send, in the window it is in (or the next one when
   outside every window), what is left of that day's plan, no more than its
   current rate fits in the time left, and nothing while paused. A window that
   starts a new local day first closes the lane's day as the lane itself will
   (advance, repeat or idle reset), so the plan is right before anything sends.
2. The queued mail the warming lanes will take is what they will still send less
   what they already hold claimed (that mail is no longer queued). The rest of
   the queue is the overflow budget: mail they will really not send today.
3. The overflow lanes spread their budget evenly over the window's time left:
   each lane's pace is its share of the budget, plus what it holds, over the hours
   left (never above its own allowance: the caller caps it).
4. Idle re-warm: a lane that has not sent for ``schedule.idle_reset`` starts again
   at ramp day 1 when its next day opens, an overflow lane too (an ISP forgets an
   idle IP whatever our config says). Until warmed again an overflow lane still
   takes only the overflow, at its ramp's rate. :func:`idle_reset_due` says so
   before the lane next sends.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, tzinfo

from warmup.core.lanes.lane import Lane, close_day, lane_rate, resume
from warmup.core.lanes.pacing import (
    local_day,
    next_window_open,
    slot_interval,
    window_bounds,
    window_containing,
)
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneState

__all__ = [
    "idle_reset_due",
    "overflow_budget",
    "overflow_pace",
    "remaining_in_window",
    "window_for",
]

_HOUR = timedelta(hours=1)


def window_for(
    now: datetime, schedule: Schedule, tz: tzinfo
) -> tuple[datetime, datetime]:
    """The window ``now`` is in, else the next one to open."""
    current = window_containing(now, schedule.window, tz)
    if current is not None:
        return current
    opens = next_window_open(now, schedule.window, tz)
    return opens, opens + schedule.window.duration


def planned_for(lane: Lane, day: date, schedule: Schedule, tz: tzinfo) -> int:
    """A day's plan for the lane at its ramp day (what the runtime plans)."""
    start, end = window_bounds(day, schedule.window, tz)
    return math.floor(schedule.per_hour(lane.ramp_day) * ((end - start) / _HOUR) + 1e-9)


def idle_reset_due(lane: Lane, schedule: Schedule, now: datetime) -> bool:
    """Whether the lane's next day starts it again at ramp day 1 (rule 4)."""
    return (
        lane.ramp_day > 1
        and lane.last_sent_at is not None
        and now - lane.last_sent_at >= schedule.idle_reset
    )


def _on_day(
    lane: Lane, window: tuple[datetime, datetime], schedule: Schedule, tz: tzinfo
) -> Lane:
    day = local_day(window[0], tz)
    if lane.day is None or lane.day == day:
        return lane
    planned = planned_for(lane, lane.day, schedule, tz)
    closed, _ = close_day(
        lane, new_day=day, now=window[0], planned=planned, schedule=schedule
    )
    return closed


def _slots(lane: Lane, rate: float, start: datetime, end: datetime) -> int:
    """Pacing slots of ``rate`` (> 0: not paused) in [start, end) after the
    lane's last send."""
    interval = slot_interval(rate)
    first = start
    if lane.last_sent_at is not None:
        first = max(first, lane.last_sent_at + interval)
    if first >= end:
        return 0
    return math.ceil((end - first) / interval - 1e-9)  # end is exclusive


def remaining_in_window(
    lane: Lane, schedule: Schedule, *, now: datetime, tz: tzinfo
) -> int:
    """What a warming lane will still send in its current (or next) window (rule 1)."""
    window = window_for(now, schedule, tz)
    lane = _on_day(lane, window, schedule, tz)
    start = max(now, window[0])
    if lane.state is LaneState.paused:
        until = lane.paused_until
        if until is None or until >= window[1]:
            return 0
        start = max(start, until)
        lane, _ = resume(lane, now=start, schedule=schedule)
    left = planned_for(lane, local_day(window[0], tz), schedule, tz)
    left -= lane.stats.attempted
    return max(0, min(left, _slots(lane, lane_rate(lane, schedule), start, window[1])))


def overflow_budget(*, queued: int, warming_left: int, warming_held: int) -> int:
    """Queued mail the warming lanes will not take (rule 2)."""
    return max(queued - max(warming_left - warming_held, 0), 0)


def overflow_pace(
    *, share: int, held: int, now: datetime, window_end: datetime
) -> float:
    """Messages per hour that spread ``share + held`` evenly until ``window_end``
    (rule 3); 0 when there is nothing to send or no time left."""
    hours = (window_end - now) / _HOUR
    total = share + held
    if total <= 0 or hours <= 0:
        return 0.0
    return total / hours
