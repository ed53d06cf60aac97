"""The overflow plan of one beat, from the store (every node's lanes), not memory.

See :mod:`warmup.core.overflow` for the rules; this gathers their inputs: the
queue per ISP, every configured IP's lane (a lane not created yet counts as a new
one), and what each lane holds claimed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from warmup.core.lane import Lane, new_lane
from warmup.core.overflow import overflow_budget, remaining_in_window, window_for
from warmup.core.routing import DEFAULT_ISP
from warmup.core.schedule import Schedule
from warmup.core.settings import SourceIP

__all__ = ["OverflowPlan", "plan_overflow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowPlan:
    """One ISP's overflow: what its overflow lanes may still take, until when."""

    budget: int
    lanes: int  # overflow lanes of the ISP over every node
    window_start: datetime
    window_end: datetime
    warming_left: int = 0

    @property
    def share(self) -> int:
        """One overflow lane's part of the budget."""
        return math.ceil(self.budget / max(self.lanes, 1))


def plan_overflow(
    *,
    isps: Sequence[str],
    queued: Mapping[str, int],
    lanes: Sequence[tuple[int, Lane, float]],
    held: Mapping[int, int],
    pool: Sequence[SourceIP],
    schedules: Mapping[str, Schedule],
    tz: tzinfo,
    now: datetime,
) -> dict[str, OverflowPlan]:
    stored = {(lane.ip, lane.isp): (lane_id, lane) for lane_id, lane, _ in lanes}
    plans: dict[str, OverflowPlan] = {}
    for isp in isps:
        schedule = schedules.get(isp) or schedules[DEFAULT_ISP]
        left = taken = overflow_lanes = 0
        for source in pool:
            if source.overflows_for(isp):
                overflow_lanes += 1
                continue
            lane_id, lane = stored.get(
                (source.address, isp),
                (None, new_lane(source.address, isp, schedule=schedule)),
            )
            left += remaining_in_window(lane, schedule, now=now, tz=tz)
            taken += held.get(lane_id, 0) if lane_id is not None else 0
        budget = overflow_budget(
            queued=queued.get(isp, 0), warming_left=left, warming_held=taken
        )
        start, end = window_for(now, schedule, tz)
        plans[isp] = OverflowPlan(
            budget=budget,
            lanes=overflow_lanes,
            window_start=start,
            window_end=end,
            warming_left=left,
        )
    return plans
