"""Filling the lanes' buffers with claimed recipients.

Rules:

1. A lane claims (``delivery.batch_size`` at most, 4 h of its pace at most) when
   its buffer runs dry; the claim's lease covers sending it at the lane's pace plus
   the margin. The claimed recipients are checked against the suppression list in
   one indexed query per claim, just before sending (DESIGN §3); those suppressed
   are settled as such in the tick's record and never reach the buffer.
2. Claiming ahead (``claim_ahead``, used when a tick lets each lane send a burst):
   before the lanes are driven, every driven lane whose buffer holds less than one
   burst tops it up, all of them in one transaction, with one suppression query.
   Each claim keeps its own lease (``Claimed.lease_until``), so a buffer that holds
   two claims hands each back under its own. Without this, lanes that run dry in
   the middle of a tick claim one after another behind the store's writer lock
   while the other lanes wait for them at the tick's end.
3. An overflow lane (an IP already warm for the ISP) claims only its share of the
   overflow, a little at a time (``OverflowPlanner.claim_limit``), never ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from warmup.app.lanes import LaneRuntime
from warmup.app.overflow import OverflowPlanner
from warmup.app.ports import EngineStore
from warmup.app.settings import EngineSettings
from warmup.core.attempt import Claimed, LaneClaim, TickRecord
from warmup.core.model import LaneState
from warmup.core.recipients.suppression import is_suppressed, lookup_keys

__all__ = ["LaneFeeder"]


class LaneFeeder:
    """Claims for the lanes and filters what they claimed (rules above)."""

    def __init__(
        self,
        store: EngineStore,
        settings: EngineSettings,
        overflow: OverflowPlanner,
        *,
        lease_margin: timedelta,
    ) -> None:
        self.store = store
        self.settings = settings
        self._overflow = overflow
        self._lease_margin = lease_margin
        # Unsubscribed from one campaign only: one more query per claim, skipped
        # while there are none (the dispatcher's maintenance turns it on).
        self.campaign_scoped = False

    async def refill(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> None:
        """Claim for one lane whose buffer ran dry (rule 1)."""
        limit = runtime.claim_size(self.settings.delivery.batch_size)
        if runtime.overflow:
            limit = min(limit, self._overflow.claim_limit(runtime))
            if limit <= 0:
                return
        lease_until = now + runtime.lease_for(limit, self._lease_margin)
        claimed = await self.store.claim(
            lane_id=runtime.id,
            isp=runtime.lane.isp,
            limit=limit,
            now=now,
            claimer=self.settings.node,
            lease_until=lease_until,
        )
        runtime.lease_until = lease_until
        if runtime.overflow:
            self._overflow.claimed(runtime.lane.isp, len(claimed))
        await self._take([(runtime, claimed)], now, record)

    async def claim_ahead(
        self, driven: Sequence[LaneRuntime], now: datetime, record: TickRecord
    ) -> None:
        """Top up every lane that may not last the burst, in one claim (rule 2)."""
        burst = self.settings.burst_sends
        hungry = [r for r in driven if len(r.buffer) < burst and _may_send(r, now)]
        if not hungry:
            return
        requests = []
        for runtime in hungry:
            limit = runtime.claim_size(self.settings.delivery.batch_size)
            ahead = len(runtime.buffer) + limit  # sent after what it holds
            lease_until = now + runtime.lease_for(ahead, self._lease_margin)
            requests.append(
                LaneClaim(
                    lane_id=runtime.id,
                    isp=runtime.lane.isp,
                    limit=limit,
                    lease_until=lease_until,
                )
            )
        got = await self.store.claim_lanes(
            requests, now=now, claimer=self.settings.node
        )
        for runtime, request, claimed in zip(hungry, requests, got, strict=True):
            runtime.lease_until = request.lease_until
            if not claimed and not runtime.buffer:
                runtime.mark_idle(now)  # nothing due: not claimed again this tick
        await self._take(list(zip(hungry, got, strict=True)), now, record)

    async def _take(
        self,
        claims: list[tuple[LaneRuntime, list[Claimed]]],
        now: datetime,
        record: TickRecord,
    ) -> None:
        """Into the buffers what is not suppressed; the rest settled as such."""
        every = [item for _, claimed in claims for item in claimed]
        if not every:
            return
        # One indexed query for the whole claim, just before sending (DESIGN §3).
        found = await self.store.suppressed_keys(
            sorted(lookup_keys(c.address for c in every))
        )
        scoped = (
            await self.store.campaign_suppressed(
                [(c.campaign_id, c.address) for c in every]
            )
            if self.campaign_scoped
            else set()
        )
        for runtime, claimed in claims:
            if not claimed:
                continue
            if runtime.idle_until is not None:  # mail again after an idle spell
                runtime.not_before = now
            for item in claimed:
                if (
                    is_suppressed(item.address, found)
                    or (item.campaign_id, item.address) in scoped
                ):
                    record.dropped.append(item.id)
                else:
                    runtime.buffer.append(item)
            runtime.idle_until = None


def _may_send(runtime: LaneRuntime, now: datetime) -> bool:
    """Worth claiming ahead for: not overflow, not paused or idle, day not spent."""
    if runtime.overflow or runtime.lane.state is LaneState.paused:
        return False
    if runtime.idle_until is not None and now < runtime.idle_until:
        return False
    return runtime.lane.stats.attempted < runtime.planned
