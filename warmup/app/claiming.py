"""Filling the lanes' buffers with claimed recipients.

Rules:

1. A lane claims (``delivery.batch_size`` at most, 4 h of its pace at most) when
   its buffer runs dry; the claim's lease covers sending it at the lane's pace plus
   the margin. The claimed recipients are checked against the suppression list in
   one indexed query per claim, just before sending (DESIGN §3); those suppressed
   are settled as such in the tick's record and never reach the buffer.
2. Claiming ahead (``start_ahead``, used when a tick lets each lane send a burst):
   as the lanes are driven, every driven lane whose buffer holds less than two
   bursts (this tick's and the next one's) tops it up, all of them in one
   transaction, with one suppression query. The claim runs while the lanes send
   (the store works on its own thread); a lane that runs dry before it is done
   waits for it (``refill``) rather than claiming on its own, and the tick waits
   for it (``settle_ahead``) before its record is written. Each claim keeps its
   own lease (``Claimed.lease_until``), so a buffer that holds two claims hands
   each back under its own. Without this, lanes that run dry in the middle of a
   tick claim one after another behind the store's writer lock while the other
   lanes wait for them at the tick's end; and with the claim before the sends,
   no lane sends while it runs (a tenth of ``warmup run``'s time, issue 16).
3. An overflow lane (an IP already warm for the ISP) claims only its share of the
   overflow, a little at a time (``OverflowPlanner.claim_limit``), never ahead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from warmup.app.lanes import LaneRuntime
from warmup.app.overflow import OverflowPlanner
from warmup.app.ports import EngineStore
from warmup.app.settings import EngineSettings
from warmup.core.attempt import Claimed, LaneClaim, TickRecord
from warmup.core.errors import StoreError
from warmup.core.model import LaneState
from warmup.core.recipients.suppression import is_suppressed, lookup_keys

__all__ = ["LaneFeeder"]

logger = logging.getLogger(__name__)


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
        # This tick's claim ahead while it runs, and the lanes (ids) it is for
        # that have not waited for it yet.
        self._ahead: asyncio.Task[bool] | None = None
        self._ahead_for: set[int] = set()

    async def refill(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> None:
        """Claim for one lane whose buffer ran dry (rule 1); a lane the tick's
        claim ahead is for waits for that instead the first time (rule 2), and
        claims on its own if it failed, or when it runs dry again."""
        ahead = self._ahead
        if ahead is not None and runtime.id in self._ahead_for:
            self._ahead_for.discard(runtime.id)
            # Shielded: a lane's drive cancelled must not cancel the others' claim.
            if await asyncio.shield(ahead) or runtime.buffer:
                return
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

    def start_ahead(
        self,
        driven: Sequence[LaneRuntime],
        now: datetime,
        record: TickRecord,
        trouble: Callable[[StoreError], None],
    ) -> None:
        """Start topping up, in one claim, every lane that may not last this
        burst and the next (rule 2), while the lanes send; a store error goes to
        ``trouble`` and leaves the lanes to claim on their own."""
        burst = self.settings.burst_sends
        hungry = [r for r in driven if len(r.buffer) < 2 * burst and _may_send(r, now)]
        if not hungry:
            return
        self._ahead_for = {runtime.id for runtime in hungry}
        self._ahead = asyncio.ensure_future(self._guarded(hungry, now, record, trouble))

    async def _guarded(
        self,
        hungry: Sequence[LaneRuntime],
        now: datetime,
        record: TickRecord,
        trouble: Callable[[StoreError], None],
    ) -> bool:
        try:
            await self.claim_ahead(hungry, now, record)
        except StoreError as exc:
            trouble(exc)
            return False
        except Exception:
            # Not out of the tick: the lanes have sent, and its record must be
            # written. Each lane claims on its own, under its own guard.
            logger.exception("claiming ahead failed this tick")
            return False
        return True

    async def settle_ahead(self) -> None:
        """The tick's claim ahead done (its record may hold what it dropped as
        suppressed); cancelled when the tick is."""
        ahead = self._ahead
        if ahead is None:
            return
        try:
            await asyncio.shield(ahead)
        except asyncio.CancelledError:
            self.abandon_ahead()
            raise
        self._ahead, self._ahead_for = None, set()

    def abandon_ahead(self) -> None:
        """The tick was cancelled (shutdown): so is its claim ahead, not waited
        for. Rows it claimed stay leased to this claimer: handed back at
        shutdown (``release_claims``)."""
        ahead, self._ahead = self._ahead, None
        self._ahead_for = set()
        if ahead is not None:
            ahead.cancel()

    async def claim_ahead(
        self, hungry: Sequence[LaneRuntime], now: datetime, record: TickRecord
    ) -> None:
        """Top up these lanes in one claim (rule 2)."""
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
        try:
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
        except BaseException:
            # Claimed, never looked at: back to the queue with the tick's record,
            # not left leased to this node until the lease runs out.
            for runtime, claimed in claims:
                runtime.give_back(claimed, record)
            raise
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
            if runtime.lane.state is LaneState.paused:
                # Paused by a reply while its claim ahead ran: give it all back.
                runtime.hand_back(record)


def _may_send(runtime: LaneRuntime, now: datetime) -> bool:
    """Worth claiming ahead for: not overflow, not paused or idle, day not spent."""
    if runtime.overflow or runtime.lane.state is LaneState.paused:
        return False
    if runtime.idle_until is not None and now < runtime.idle_until:
        return False
    return runtime.lane.stats.attempted < runtime.planned
