"""The dispatcher: each ``tick()`` sends what the lanes' pacing allows right now.

One tick: ``now = clock.now()`` once; maintenance when due (expired leases back to
the queue, domains routed by MX, lanes created for ISPs with mail); each lane
decides from its state and pacing whether it sends now; due lanes send one
message each, concurrently; every reply is classified and reacted to before the
lane's next slot is computed; all of it is recorded in one transaction. ``tick``
returns when it wants to run next, so a virtual clock can jump straight there.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from warmup.app.lanes import LaneRuntime
from warmup.app.outcome import OutcomeHandler
from warmup.app.ports import Clock, EngineStore, Resolver, Sender
from warmup.app.render import Renderer
from warmup.core.attempt import Claimed, TickRecord
from warmup.core.lane import new_lane
from warmup.core.model import RecipientState
from warmup.core.routing import DEFAULT_ISP, isp_by_mx
from warmup.core.schedule import Schedule
from warmup.core.settings import DeliverySettings, SourceIP
from warmup.core.suppression import lookup_keys

__all__ = ["Dispatcher", "EngineSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    schedules: Mapping[str, Schedule]
    ips: Sequence[SourceIP]  # the source IPs this node owns
    delivery: DeliverySettings
    return_path: str
    verp_secret: bytes
    tz: tzinfo
    node: str  # claimer name, unique per running process
    maintenance_every: timedelta = timedelta(minutes=1)
    idle_wake: timedelta = timedelta(minutes=1)


@dataclass(slots=True)
class _Due:
    runtime: LaneRuntime
    claimed: Claimed


@dataclass(slots=True)
class TickStats:
    sent: int = 0
    ticks: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(
        self,
        *,
        store: EngineStore,
        sender: Sender,
        resolver: Resolver,
        clock: Clock,
        settings: EngineSettings,
        rng: random.Random,
    ) -> None:
        self.store = store
        self.sender = sender
        self.resolver = resolver
        self.clock = clock
        self.settings = settings
        self.rng = rng
        self.lanes: dict[tuple[str, str], LaneRuntime] = {}
        self.stats = TickStats()
        self._renderer = Renderer(
            store, return_path=settings.return_path, secret=settings.verp_secret
        )
        self._outcomes = OutcomeHandler(store, settings)
        self._next_maintenance: datetime | None = None
        self._queued: dict[str, int] = {}
        self._overflow_budget: dict[str, int] = {}

    # -- the tick ----------------------------------------------------------------

    async def tick(self) -> datetime:
        now = self.clock.now()
        self.stats.ticks += 1
        record = TickRecord()
        if self._next_maintenance is None or now >= self._next_maintenance:
            await self._maintain(now)
        wakes = [self._next_maintenance or now + self.settings.maintenance_every]
        due: list[LaneRuntime] = []
        for runtime in self.lanes.values():
            wake = runtime.next_action(now, record)
            if wake is None:
                due.append(runtime)
            else:
                wakes.append(wake)
        sends = await self._take(due, now, record)
        idle = {id(r) for r in due} - {id(d.runtime) for d in sends}
        wakes.extend(
            r.idle_until or now + self.settings.idle_wake for r in due if id(r) in idle
        )
        await self._send_all(sends, now, record)
        wakes.extend(d.runtime.next_wake(now) for d in sends)
        for runtime in self.lanes.values():
            if runtime.dirty:
                record.lanes[runtime.id] = runtime.snapshot()
                runtime.dirty = False
        await self.store.record(record, now)
        return max(min(wakes), now)

    async def _take(
        self, due: list[LaneRuntime], now: datetime, record: TickRecord
    ) -> list[_Due]:
        for runtime in due:
            if not runtime.buffer:
                await self._refill(runtime, now, record)
            if not runtime.buffer:
                runtime.mark_idle(now)
        return [_Due(r, r.buffer.popleft()) for r in due if r.buffer]

    async def _refill(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> None:
        isp = runtime.lane.isp
        limit = runtime.claim_size(
            self.settings.delivery.batch_size, self.settings.delivery.lease
        )
        if runtime.overflow:
            limit = min(limit, self._overflow_budget.get(isp, 0))
            if limit <= 0:
                return
        claimed = await self.store.claim(
            lane_id=runtime.id,
            isp=isp,
            limit=limit,
            now=now,
            claimer=self.settings.node,
            lease_until=now + self.settings.delivery.lease,
        )
        if runtime.overflow:
            self._overflow_budget[isp] = self._overflow_budget.get(isp, 0) - len(
                claimed
            )
        if not claimed:
            return
        # One indexed query per batch, just before sending (DESIGN §3).
        found = await self.store.suppressed_keys(
            sorted(lookup_keys(c.address for c in claimed))
        )
        for item in claimed:
            if item.address in found or "@" + item.domain in found:
                record.dropped.append(item.id)
            else:
                runtime.buffer.append(item)
        runtime.idle_until = None

    async def _send_all(
        self, sends: list[_Due], now: datetime, record: TickRecord
    ) -> None:
        sends = [
            d for d in sends if not self._outcomes.drop_if_suppressed(d.claimed, record)
        ]
        if not sends:
            return
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._send_one(d, now)) for d in sends]
        for item, task in zip(sends, tasks, strict=True):
            outcome, hop = task.result()
            item.runtime.sent(now)
            self._outcomes.apply(item.runtime, item.claimed, outcome, hop, now, record)
            self.stats.sent += 1
            if record.attempts[-1].decision.state is RecipientState.expired:
                await self._outcomes.after_expiry(item.claimed, now, record)

    async def _send_one(self, item: _Due, now: datetime) -> tuple[object, str]:
        runtime, claimed = item.runtime, item.claimed
        hop = await self._outcomes.next_hop(
            self.resolver, claimed.domain, runtime.lane.isp
        )
        if hop is None:
            return self._outcomes.no_route(claimed.domain), ""
        mail_from, message = await self._renderer.render(claimed, now)
        outcome = await self.sender.send(
            source=runtime.source,
            host=hop.host,
            port=hop.port,
            sender=mail_from,
            recipient=claimed.address,
            message=message,
        )
        return outcome, f"{hop.host}:{hop.port}"

    # -- maintenance -------------------------------------------------------------

    async def _maintain(self, now: datetime) -> None:
        self._next_maintenance = now + self.settings.maintenance_every
        released = await self.store.release_expired_leases(now)
        if released:
            logger.info(
                "returned %d recipients with expired leases to the queue", released
            )
        await self._route(now)
        self._queued = await self.store.queued_isps()
        for isp in self._queued:
            await self._ensure_lanes(isp, now)
        self._plan_overflow()

    async def _route(self, now: datetime) -> None:
        for domain in await self.store.unrouted_domains():
            answer = await self.resolver.mx(domain)
            if answer.error in ("nxdomain", "nullmx"):
                count = await self.store.fail_domain(
                    domain, f"no mail for {domain}: {answer.error}", now
                )
                logger.warning(
                    "domain %s cannot receive mail (%s): %d recipients bounced",
                    domain,
                    answer.error,
                    count,
                )
            elif answer.error is None:
                isp = isp_by_mx(answer.hosts, self.settings.schedules.values())
                await self.store.route_domain(domain, isp, now)

    async def _ensure_lanes(self, isp: str, now: datetime) -> None:
        schedule = (
            self.settings.schedules.get(isp) or self.settings.schedules[DEFAULT_ISP]
        )
        for source in self.settings.ips:
            if (source.address, isp) in self.lanes:
                continue
            overflow = source.overflows_for(isp)
            initial = new_lane(source.address, isp, warmed=overflow, schedule=schedule)
            lane_id, lane = await self.store.ensure_lane(initial, now)
            self.lanes[(source.address, isp)] = LaneRuntime(
                id=lane_id,
                lane=lane,
                schedule=schedule,
                source=source,
                tz=self.settings.tz,
                overflow=overflow,
            )

    def _plan_overflow(self) -> None:
        """Overflow lanes may take what the warming lanes cannot send today."""
        for isp, queued in self._queued.items():
            warming = [
                r for r in self.lanes.values() if r.lane.isp == isp and not r.overflow
            ]
            left = sum(
                max(r.planned - r.lane.stats.attempted, 0) + len(r.buffer)
                for r in warming
            )
            self._overflow_budget[isp] = max(queued - left, 0)

    # -- shutdown ----------------------------------------------------------------

    async def finish(self) -> TickRecord:
        """Close every open day (roll-ups) and hand back claimed, unsent mail."""
        now = self.clock.now()
        record = TickRecord()
        for runtime in self.lanes.values():
            day = runtime.day_record()
            if day is not None and day.stats.attempted:
                record.days.append(day)
            record.released.extend(c.id for c in runtime.buffer)
            runtime.buffer.clear()
            record.lanes[runtime.id] = runtime.snapshot()
        await self.store.record(record, now)
        await self.store.release_claims(self.settings.node, now)
        return record
