"""Operator controls on a running dispatcher (see warmup.core.lanes.control).

Every ``every`` (2 s) the watcher reads the controls' version, one cheap query;
when it moved, it reloads the cancelled campaigns. Lanes that have not applied
the newest control get it through the lane state machine (core.lanes.lane rule 8); a
lane the operator paused hands its claims back to the queue at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from warmup.app.lanes import LaneRuntime
from warmup.app.ports import EngineStore
from warmup.core.attempt import Claimed, TickRecord
from warmup.core.lanes.control import apply_controls
from warmup.core.model import LaneState

__all__ = ["ControlWatcher"]

logger = logging.getLogger(__name__)


class ControlWatcher:
    def __init__(self, store: EngineStore, every: timedelta) -> None:
        self._store = store
        self._every = every
        self._next_at: datetime | None = None
        self._version = 0
        self._cancelled: frozenset[int] = frozenset()

    async def poll(
        self, now: datetime, runtimes: Iterable[LaneRuntime], record: TickRecord
    ) -> None:
        """Apply new controls to the lanes that have not seen them."""
        if self._next_at is None or now >= self._next_at:
            self._next_at = now + self._every
            version = await self._store.control_version()
            if version != self._version:
                self._version = version
                self._cancelled = frozenset(await self._store.cancelled_campaign_ids())
        stale = [r for r in runtimes if r.lane.control_seen < self._version]
        if not stale:
            return
        controls = await self._store.controls_after(
            min(r.lane.control_seen for r in stale)
        )
        for runtime in stale:
            lane, events = apply_controls(
                runtime.lane, controls, now=now, schedule=runtime.schedule
            )
            runtime.react(lane, events, record)
            for event in events:
                logger.info(
                    "lane %s/%s: %s", lane.ip, lane.isp, event.detail or event.cause
                )
            if lane.state is LaneState.paused:
                runtime.hand_back(record)
            elif any(event.cause == "operator_resume" for event in events):
                runtime.not_before = now

    def held(self, claimed: Claimed, now: datetime, record: TickRecord) -> bool:
        """Just before sending: a recipient whose campaign was cancelled (as last
        seen) or whose deadline has passed is not sent, and recorded as such."""
        if claimed.campaign_id in self._cancelled:
            record.cancelled.append(claimed.id)
            return True
        if claimed.deadline_at is not None and now >= claimed.deadline_at:
            record.late.append(claimed.id)
            return True
        return False
