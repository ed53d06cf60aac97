"""Whether a lane needs a look, judged in one place for `warmup status`, the
report and the metrics (pure).

Rules, first match wins:

1. A lane whose idle reset is due (:func:`warmup.core.lanes.overflow.idle_reset_due`)
   is healthy: its next day starts afresh at ramp day 1, its old day no longer
   counts.
2. ``paused`` and ``backed_off`` lanes are their state.
3. ``high_rates``: the lane's current day holds at least ``rates.min_sample``
   attempts and a rate over the limits that keep a day from advancing
   (:func:`warmup.core.lanes.lane.rates_over` — the very rule of the day close, rule 5
   of :mod:`warmup.core.lanes.lane`).
4. Otherwise healthy (None).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from warmup.core.lanes.lane import Lane, rates_over
from warmup.core.lanes.overflow import idle_reset_due
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneState

__all__ = ["LaneProblem", "lane_problem"]


class LaneProblem(StrEnum):
    paused = "paused"
    backed_off = "backed_off"
    high_rates = "high_rates"


def lane_problem(
    lane: Lane, schedule: Schedule | None, now: datetime | None = None
) -> LaneProblem | None:
    """Why the lane needs a look, if it does (``now``: for rule 1; without a
    schedule, rule 2 only)."""
    if schedule is not None and now is not None and idle_reset_due(lane, schedule, now):
        return None
    if lane.state is LaneState.paused:
        return LaneProblem.paused
    if lane.state is LaneState.backed_off:
        return LaneProblem.backed_off
    if schedule is None:
        return None
    if rates_over(lane.stats, schedule.advance, schedule.reactions.rates):
        return LaneProblem.high_rates
    return None
