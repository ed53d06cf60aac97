"""The dispatcher: each ``tick()`` sends what the lanes' pacing allows right now.

One tick: ``now = clock.now()`` once; maintenance when due (expired leases back to
the queue, domains routed by MX, lanes created for ISPs with mail); each lane
decides from its state and pacing whether it sends now; due lanes send one
message each, concurrently; every reply is classified and reacted to before the
lane's next slot is computed; all of it is recorded in one transaction. ``tick``
returns when it wants to run next, so a virtual clock can jump straight there.

Every few seconds a tick first beats: it renews this process's heartbeat and IP
leases (only the owner of an IP sends from it; warmup.app.ownership), notices
mail queued by other processes, and re-plans overflow from the store
(warmup.app.overflow).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from warmup.app.claiming import LaneFeeder
from warmup.app.controls import ControlWatcher
from warmup.app.dmarc import auth_verdicts
from warmup.app.domains import DomainRouter
from warmup.app.lanes import LaneRuntime
from warmup.app.outcome import MX_TRIES, OutcomeHandler
from warmup.app.overflow import OverflowPlanner
from warmup.app.ownership import Processes, ip_ownership
from warmup.app.ports import Clock, EngineStore, Resolver, Sender
from warmup.app.recording import record_until_stored
from warmup.app.render import Renderer
from warmup.app.reputation import apply_reputation
from warmup.app.settings import EngineSettings
from warmup.app.sign import Held, MessageSigner
from warmup.core.attempt import Claimed, HeldRecipient, SendOutcome, TickRecord
from warmup.core.errors import StoreError
from warmup.core.lanes.backoff import UNREACHABLE
from warmup.core.lanes.lane import new_lane
from warmup.core.recipients.routing import schedule_for
from warmup.core.recipients.unsubscribe import UnsubscribeScope

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class TickStats:
    sent: int = 0
    ticks: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)
    # Failed attempts to write a tick's record (the database away).
    record_failures: int = 0
    # Lane turns lost to a store error (claiming, say), logged once a minute.
    lane_failures: int = 0


_STORE_LOG_EVERY = timedelta(minutes=1)
# A maintenance the store failed is tried again this soon, not a period later.
_MAINTENANCE_RETRY = timedelta(seconds=10)


class Dispatcher:
    def __init__(
        self,
        *,
        store: EngineStore,
        sender: Sender,
        resolver: Resolver,
        clock: Clock,
        settings: EngineSettings,
        processes: Processes | None = None,
        signer: MessageSigner | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.resolver = resolver
        self.clock = clock
        self.settings = settings
        self.lanes: dict[tuple[str, str], LaneRuntime] = {}
        self.stats = TickStats()
        self._renderer = Renderer(
            store,
            return_path=settings.return_path,
            secret=settings.verp_secret,
            signer=signer,
            unsubscribe=settings.unsubscribe,
        )
        self._outcomes = OutcomeHandler(store, settings)
        self._controls = ControlWatcher(store, settings.controls_every)
        self._domains = DomainRouter(
            store=store,
            resolver=resolver,
            schedules=settings.schedules,
            delivery=settings.delivery,
            dns=settings.dns,
        )
        self._next_maintenance: datetime | None = None
        self._poked = False
        # Per lane, from its last drive: when it may send next (the tick's
        # wake-up), and when it must be driven again (that, or earlier when
        # time alone changes it: LaneRuntime.next_change).
        self._wakes: dict[tuple[str, str], datetime] = {}
        self._drive_at: dict[tuple[str, str], datetime] = {}
        # A tick's results until they are written: finish() writes them if the
        # tick was cancelled on shutdown, so finished sends are not repeated.
        self._unrecorded: TickRecord | None = None
        self._quiet_until: datetime | None = None  # lane store errors unlogged
        self._queued: dict[str, int] = {}
        self._overflow = OverflowPlanner(
            store,
            pool=settings.pool or settings.ips,
            schedules=settings.schedules,
            tz=settings.tz,
        )
        self._ownership = ip_ownership(
            store,
            claimer=settings.node,
            ips=[source.address for source in settings.ips],
            lease=settings.delivery.ip_lease,
            processes=processes,
        )
        # A claim's lease covers its sending time plus the configured margin plus
        # the longest one SMTP transaction may take (every timeout in a row); the
        # rest of a buffer is handed back before the margin runs out.
        timeouts = settings.delivery.timeouts
        send_budget = MX_TRIES * timeouts.connect + 4 * timeouts.command + timeouts.data
        self._hand_back_before = settings.delivery.lease / 2 + send_budget
        self._feeder = LaneFeeder(
            store,
            settings,
            self._overflow,
            lease_margin=settings.delivery.lease + send_budget,
        )
        self._feeder.campaign_scoped = (
            settings.unsubscribe.scope is UnsubscribeScope.campaign
        )

    @property
    def _bursting(self) -> bool:
        """A tick lets each lane send its due slots for a while (warmup run)."""
        return self.settings.catch_up == 1 and self.settings.burst > timedelta(0)

    # -- the tick ----------------------------------------------------------------

    async def tick(self) -> datetime:
        now = self.clock.now()
        self.stats.ticks += 1
        record = TickRecord(claimer=self.settings.node)
        # From the start: a tick cancelled on shutdown (in its sends, say, or
        # while a claim ahead ends) still has what it did written by finish().
        self._unrecorded = record
        beat = await self._beat(now, record)
        due = self._next_maintenance is None or now >= self._next_maintenance
        # Every lane is driven when something outside it may have moved its
        # wake-up earlier: maintenance and late reports, a poke (new mail, an IP
        # gained at the beat), the overflow plan; else only the lanes whose
        # wake-up has come, and those a control changed (dirty).
        everyone = due or self._poked or (beat and self._any_overflow())
        if due or self._poked:
            self._poked = False
            try:
                await self._maintain(now)
                await self._apply_late_reports(now, record)
                await self._check_auth(now, record)
            except StoreError:  # the runner logs it; lanes send in between
                self._next_maintenance = now + min(
                    self.settings.maintenance_every, _MAINTENANCE_RETRY
                )
                raise
        if due or beat:
            await self._overflow.plan(self.lanes.values(), now, record)
        await self._controls.poll(now, self.lanes.values(), record)
        await self._drive_due(now, record, everyone=everyone)
        wakes = [self._next_maintenance or now + self.settings.maintenance_every]
        wakes.extend(self._wakes[key] for key in self.lanes)
        for runtime in self.lanes.values():
            if runtime.dirty:
                record.lanes[runtime.id] = runtime.snapshot()
                runtime.dirty = False
        await record_until_stored(self.store, self.clock, record, now, self.stats)
        self._unrecorded = None
        return max(min(wakes), now)

    async def _drive_due(
        self, now: datetime, record: TickRecord, *, everyone: bool
    ) -> None:
        """Drive the due lanes concurrently; keep each one's wake-up, and when
        to drive it again: then, or at its next time-driven change if earlier
        (LaneRuntime.next_change: a hold's end, a recovery step, a window)."""
        drive_at = self._drive_at
        driven = [
            (key, runtime)
            for key, runtime in self.lanes.items()
            if everyone or runtime.dirty or drive_at.get(key, now) <= now
        ]
        if self._bursting:  # one claim, while they send, for lanes running low
            self._feeder.start_ahead(
                [r for _, r in driven],
                now,
                record,
                # Each lane then claims on its own, guarded.
                lambda exc: self._store_trouble(
                    now, "claiming ahead failed this tick", exc
                ),
            )
        try:
            if len(driven) == 1:  # no task needed for a lone lane
                key, runtime = driven[0]
                wakes = [await self._drive_safely(runtime, now, record)]
            else:
                async with asyncio.TaskGroup() as group:
                    tasks = [
                        group.create_task(self._drive_safely(runtime, now, record))
                        for _, runtime in driven
                    ]
                wakes = [task.result() for task in tasks]
        except BaseException:  # cancelled (lanes catch the rest): do not wait
            self._feeder.abandon_ahead()
            raise
        await self._feeder.settle_ahead()
        for (key, runtime), (wake, failed) in zip(driven, wakes, strict=True):
            self._wakes[key] = wake
            # A lane that failed (a store error) is tried again at the next tick.
            drive_at[key] = now if failed else min(wake, runtime.next_change(now))

    def _any_overflow(self) -> bool:
        return any(runtime.overflow for runtime in self.lanes.values())

    def poke(self) -> None:
        """New mail was queued (the relay): look at the queue on the next tick
        instead of at the next maintenance beat, and wake idle lanes."""
        self._poked = True
        for runtime in self.lanes.values():
            runtime.idle_until = None

    async def _drive_safely(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> tuple[datetime, bool]:
        """One lane's failure (a bad template, a store hiccup) must not stop the
        others or lose what they sent: log it, hand the lane's claims back.
        The lane's wake-up, and whether it failed."""
        try:
            return await self._drive(runtime, now, record), False
        except StoreError as exc:  # the database away: a line a minute at most
            self.stats.lane_failures += 1
            lane = f"lane {runtime.lane.ip}/{runtime.lane.isp} failed this tick"
            self._store_trouble(now, f"{lane} ({self.stats.lane_failures} so far)", exc)
            runtime.hand_back(record)
            return now + self.settings.idle_wake, True
        except Exception:
            logger.exception(
                "lane %s/%s failed this tick", runtime.lane.ip, runtime.lane.isp
            )
            runtime.hand_back(record)
            return now + self.settings.idle_wake, True

    def _store_trouble(self, now: datetime, what: str, exc: StoreError) -> None:
        """A store error the tick goes on after: one line a minute at most."""
        if self._quiet_until is None or now >= self._quiet_until:
            self._quiet_until = now + _STORE_LOG_EVERY
            logger.warning("%s: %s", what, exc)

    async def _drive(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> datetime:
        """Send this lane's due slots (one, or all up to now with catch-up).

        Each reply is classified and reacted to before the lane's next slot is
        computed, so a throttle slows the very next send.
        """
        catch_up = self.settings.catch_up
        bursting = self._bursting
        until = now + self.settings.burst
        for n in range(self.settings.burst_sends if bursting else catch_up):
            if bursting and n:
                now = self.clock.now()  # the wall clock moves during a burst
                if now >= until:
                    return now  # the tick's time is up: due again at once
            slot, wake = runtime.due_slot(now, record)
            if slot is None:
                return wake
            claimed = await self._next_recipient(runtime, now, record)
            if claimed is None:
                runtime.mark_idle(now)
                return runtime.idle_until or now + self.settings.idle_wake
            at = slot if catch_up > 1 else now
            rendered = await self._renderer.render_signed(claimed, at)
            if isinstance(rendered, Held):
                self._hold(runtime, claimed, rendered, now, record)
                continue
            outcome = await self._send_one(runtime, claimed, rendered, at)
            runtime.sent(at)
            done = self._outcomes.apply(runtime, claimed, outcome, at, record)
            self.stats.sent += 1
            verdict = done.verdict.value
            self.stats.by_verdict[verdict] = self.stats.by_verdict.get(verdict, 0) + 1
            if done.expired:  # by its own failures (core.lanes.reaction rule 3)
                await self._outcomes.after_expiry(claimed, at, record)
        return runtime.next_wake(now)

    async def _next_recipient(
        self, runtime: LaneRuntime, now: datetime, record: TickRecord
    ) -> Claimed | None:
        lease_end = runtime.first_lease_end()
        if lease_end is not None and now >= lease_end - self._hand_back_before:
            # Too close to the lease's end (the lane slowed down): give it back.
            runtime.hand_back(record)
        while True:
            if not runtime.buffer:
                await self._feeder.refill(runtime, now, record)
            if not runtime.buffer:
                return None
            claimed = runtime.buffer.popleft()
            if self._controls.held(claimed, now, record):
                continue
            if not self._outcomes.drop_if_suppressed(claimed, record):
                return claimed

    async def _beat(self, now: datetime, record: TickRecord) -> bool:
        """Heartbeat and IP leases when due (warmup.app.ownership); True if it ran.

        A lost IP's lanes stop here at once (claims handed back); a gained or
        taken-over IP, freed claims or newly queued mail wake the maintenance.
        """
        if not self._ownership.due(now):
            return False
        change = await self._ownership.beat(now)
        for key, runtime in list(self.lanes.items()):
            if runtime.lane.ip in change.lost:
                runtime.hand_back(record)
                del self.lanes[key]
                self._wakes.pop(key, None)
                self._drive_at.pop(key, None)
        if change.gained or change.released or change.queue_changed:
            self.poke()
        return True

    def _hold(
        self,
        runtime: LaneRuntime,
        claimed: Claimed,
        held: Held,
        now: datetime,
        record: TickRecord,
    ) -> None:
        """Back to the queue unsent and uncounted, to be looked at again later."""
        lease_until = claimed.lease_until or runtime.lease_until
        assert lease_until is not None  # claimed under this lease
        record.held.append(
            HeldRecipient(
                recipient_id=claimed.id,
                lease_until=lease_until,
                until=now + self.settings.hold_recheck,
                reason=held.reason,
            )
        )

    async def _send_one(
        self,
        runtime: LaneRuntime,
        claimed: Claimed,
        rendered: tuple[str, bytes],
        at: datetime,
    ) -> SendOutcome:
        hops = await self._outcomes.hops(
            self.resolver, claimed.domain, runtime.lane.isp
        )
        if not hops:
            return self._outcomes.no_route(claimed.domain)
        mail_from, message = rendered
        for number, hop in enumerate(hops, start=1):
            outcome = await self.sender.send(
                source=runtime.source,
                host=hop.host,
                port=hop.port,
                sender=mail_from,
                recipient=claimed.address,
                message=message,
            )
            # The next MX only when this one could not be reached at all (RFC
            # 5321 5.1); any reply, a 421 greeting included, is the ISP speaking.
            unreachable = outcome.failure in UNREACHABLE and outcome.stage == "connect"
            if not unreachable or number == len(hops):
                return outcome
        raise AssertionError("unreachable: hops is never empty here")

    # -- maintenance -------------------------------------------------------------

    async def _maintain(self, now: datetime) -> None:
        # Claims of this node's earlier (dead) processes come back at the beat
        # (warmup.app.ownership), never those of a live process of the same name.
        self._next_maintenance = now + self.settings.maintenance_every
        expired = await self.store.expire_deadlines(now)
        if expired:
            logger.info("%d recipients expired unsent at their deadline", expired)
        released = await self.store.release_expired_leases(now)
        if released:
            logger.info(
                "returned %d recipients with expired leases to the queue", released
            )
        await self._route(now)
        await self.store.compact_recipient_counts()
        self._queued = await self.store.queued_isps()
        if not self._feeder.campaign_scoped:
            self._feeder.campaign_scoped = await self.store.any_campaign_suppressions()
        for isp in self._queued:
            await self._ensure_lanes(isp, now)

    async def _apply_late_reports(self, now: datetime, record: TickRecord) -> None:
        """Bounces and complaints ingested since the last beat, on this node's
        lanes: each counts and reacts exactly as a live reply would."""
        ips = sorted(self._ownership.owned)
        pending = await self.store.pending_late_reports(ips)
        for isp in sorted({news.isp for news in pending}):
            await self._ensure_lanes(isp, now)
        for news in pending:
            runtime = self.lanes.get((news.ip, news.isp))
            if runtime is not None and runtime.id == news.lane_id:
                self._outcomes.apply_late(runtime, news, now, record)
            else:  # never expected: do not let it block the news behind it
                logger.warning(
                    "late %s for lane %d (%s/%s) has no lane here; not applied",
                    news.verdict,
                    news.lane_id,
                    news.ip,
                    news.isp,
                )
                record.late_reports_applied.append(news.id)
        if pending:
            logger.info("applied %d late bounces and complaints", len(pending))

    async def _check_auth(self, now: datetime, record: TickRecord) -> None:
        """DMARC reports ingested since: an IP failing authentication holds the
        ramps of its lanes until a clean day (core.auth.dmarc)."""
        ips = [source.address for source in self.settings.ips]
        verdicts = await auth_verdicts(self.store, ips, self.settings.dmarc, now)
        for runtime in self.lanes.values():
            runtime.set_auth(verdicts.get(runtime.source.address), now, record)
        if self.settings.reputation.enabled:  # the ISPs' own data (app.reputation)
            await apply_reputation(
                self.store,
                self.lanes.values(),
                ips=[ip.address for ip in self.settings.pool or self.settings.ips],
                settings=self.settings.reputation,
                now=now,
                record=record,
            )

    async def _route(self, now: datetime) -> None:
        # DNS answers are evidence (core/recipients/dns_evidence.py); routes are never
        # looked up.
        await self._domains.route(now)

    async def _ensure_lanes(self, isp: str, now: datetime) -> None:
        """This node's lanes of ``isp`` not loaded yet: loaded (created if new),
        all in one transaction, their windows in one read."""
        schedule = schedule_for(isp, self.settings.schedules)
        sources = [
            source
            for source in self.settings.ips
            # Not loaded yet, and not an IP another process sends from.
            if (source.address, isp) not in self.lanes
            and source.address in self._ownership.owned
        ]
        if not sources:
            return
        initials = [
            new_lane(
                source.address, isp, warmed=source.overflows_for(isp), schedule=schedule
            )
            for source in sources
        ]
        stored = await self.store.ensure_lanes(initials, now)
        runtimes = [
            LaneRuntime(
                id=lane_id,
                lane=lane,
                schedule=schedule,
                source=source,
                tz=self.settings.tz,
                overflow=source.overflows_for(isp),
            )
            for source, (lane_id, lane) in zip(sources, stored, strict=True)
        ]
        await self._outcomes.load_windows(runtimes, now)
        for runtime in runtimes:
            self.lanes[(runtime.source.address, isp)] = runtime

    # -- shutdown ----------------------------------------------------------------

    async def finish(self) -> TickRecord:
        """Close every open day (roll-ups) and hand back claimed, unsent mail."""
        now = self.clock.now()
        if self._unrecorded is not None:
            pending, self._unrecorded = self._unrecorded, None
            try:
                await self.store.record(pending, now)
            except Exception:
                logger.exception("could not record the interrupted tick")
        record = TickRecord(claimer=self.settings.node)
        for runtime in self.lanes.values():
            day = runtime.day_record()
            if day is not None and day.stats.attempted:
                record.days.append(day)
            runtime.hand_back(record)
            record.lanes[runtime.id] = runtime.snapshot()
        await self.store.record(record, now)
        await self.store.release_claims(self.settings.node, now)
        await self._ownership.leave(now)
        return record
