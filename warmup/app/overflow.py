"""The overflow plan of one beat, from the store (every node's lanes), not memory.

See :mod:`warmup.core.lanes.overflow` for the rules; this gathers their inputs: the
queue per ISP, every configured IP's lane (a lane not created yet counts as a new
one), and what each lane holds claimed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from warmup.app.lanes import LaneRuntime
from warmup.app.ports import EngineStore
from warmup.core.attempt import TickRecord
from warmup.core.lanes.lane import Lane, new_lane
from warmup.core.lanes.overflow import (
    overflow_budget,
    overflow_pace,
    remaining_in_window,
    window_for,
)
from warmup.core.lanes.schedule import Schedule
from warmup.core.recipients.routing import schedule_for
from warmup.core.settings import SourceIP

__all__ = ["OverflowPlan", "OverflowPlanner", "plan_overflow"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowPlan:
    """One ISP's overflow: what its overflow lanes may still take, until when."""

    budget: int
    lanes: int  # overflow lanes of the ISP over every node
    window_start: datetime
    window_end: datetime
    warming_left: int = 0
    warming_lanes: int = 0

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
        schedule = schedule_for(isp, schedules)
        left = taken = overflow_lanes = warming_lanes = 0
        for source in pool:
            if source.overflows_for(isp):
                overflow_lanes += 1
                continue
            warming_lanes += 1
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
            warming_lanes=warming_lanes,
        )
    return plans


class OverflowPlanner:
    """The dispatcher's overflow: planned at each beat, spent as lanes claim."""

    def __init__(
        self,
        store: EngineStore,
        *,
        pool: Sequence[SourceIP],
        schedules: Mapping[str, Schedule],
        tz: tzinfo,
    ) -> None:
        self.store = store
        self.pool = pool
        self.schedules = schedules
        self.tz = tz
        self.plans: dict[str, OverflowPlan] = {}
        self.budget: dict[str, int] = {}

    async def plan(
        self, runtimes: Iterable[LaneRuntime], now: datetime, record: TickRecord
    ) -> None:
        """Re-plan from the store and set each overflow lane's even pace."""
        runtimes = list(runtimes)
        self._trim_warming(runtimes, now, record)
        mine = [r for r in runtimes if r.overflow]
        if not mine:
            return
        self.plans = plan_overflow(
            isps=sorted({r.lane.isp for r in mine}),
            queued=await self.store.queued_isps(),
            lanes=await self.store.all_lanes(),
            held=await self.store.claims_per_lane(),
            pool=self.pool,
            schedules=self.schedules,
            tz=self.tz,
            now=now,
        )
        for runtime in mine:
            plan = self.plans[runtime.lane.isp]
            self.budget[runtime.lane.isp] = plan.budget
            if not plan.warming_lanes:  # only warm IPs for this ISP: no one to
                runtime.pace_cap = None  # share the window with, full rate
                continue
            runtime.pace_cap = overflow_pace(
                share=plan.share,
                held=len(runtime.buffer),
                now=max(now, plan.window_start),
                window_end=plan.window_end,
            )
            if plan.budget > 0:
                runtime.idle_until = None

    def _trim_warming(
        self, runtimes: list[LaneRuntime], now: datetime, record: TickRecord
    ) -> None:
        """A warming lane of an ISP with overflow IPs holds no more than it will
        send in its window (a throttle or pause cut that): the rest goes back
        to the queue, where the overflow plan counts it."""
        with_overflow = {
            r.lane.isp
            for r in runtimes
            if any(source.overflows_for(r.lane.isp) for source in self.pool)
        }
        for runtime in runtimes:
            if runtime.overflow or runtime.lane.isp not in with_overflow:
                continue
            keep = remaining_in_window(
                runtime.lane, runtime.schedule, now=now, tz=self.tz
            )
            back = runtime.hand_back_beyond(keep, record)
            if back:
                logger.info(
                    "lane %s/%s will send only %d more today: %d claimed back "
                    "for overflow",
                    runtime.lane.ip,
                    runtime.lane.isp,
                    keep,
                    back,
                )

    def claim_limit(self, runtime: LaneRuntime) -> int:
        """An overflow lane claims its share a little at a time (two minutes of
        its pace), so the plan can follow the warming lanes as they change."""
        plan = self.plans.get(runtime.lane.isp)
        budget = self.budget.get(runtime.lane.isp, 0)
        if plan is None or budget <= 0:
            return 0
        return min(budget, plan.share, max(1, math.ceil(runtime.pace / 30)))

    def claimed(self, isp: str, count: int) -> None:
        self.budget[isp] = self.budget.get(isp, 0) - count
