"""From a send's outcome to everything that follows: verdict, retry, suppression,
lane reaction — the same code path for every reply."""

from __future__ import annotations

import logging
from datetime import datetime

from warmup.app.lanes import LaneRuntime
from warmup.app.ports import EngineStore, Resolver
from warmup.app.settings import EngineSettings
from warmup.core.address import mask_addresses
from warmup.core.attempt import AttemptRecord, Claimed, SendOutcome, TickRecord
from warmup.core.backoff import UNREACHABLE, next_attempt
from warmup.core.feedback import PendingLaneNews
from warmup.core.lane import Lane, LaneEvent, on_late_verdict, on_reply
from warmup.core.model import LaneState, RecipientState, Verdict
from warmup.core.pacing import next_window_open
from warmup.core.replies import (
    Classification,
    ConnectionFailure,
    classify_failure,
    classify_reply,
)
from warmup.core.routing import Hop, next_hop
from warmup.core.suppression import Suppression, bounce_target, make_suppression

__all__ = ["MX_TRIES", "OutcomeHandler"]

#: MX hosts tried in turn for one send when a host cannot be reached at all.
MX_TRIES = 3

logger = logging.getLogger(__name__)


class OutcomeHandler:
    def __init__(self, store: EngineStore, settings: EngineSettings) -> None:
        self._store = store
        self._settings = settings
        # Suppressed during this run (hard bounces): dropped before any send.
        self._suppressed: set[str] = set()

    async def hops(self, resolver: Resolver, domain: str, isp: str) -> list[Hop]:
        """Where to deliver: the configured route, else the MX hosts by preference
        (at most MX_TRIES of them); empty when DNS gave none."""
        route = next_hop(domain, isp, self._settings.delivery.routes)
        if route is not None:
            return [route]
        # The resolver caches by TTL; a temporary DNS failure is not remembered.
        answer = await resolver.mx(domain)
        return [Hop(host=host, port=25) for host in answer.hosts[:MX_TRIES]]

    async def load_window(self, runtime: LaneRuntime, now: datetime) -> None:
        """Rebuild a freshly loaded lane's rolling window from the store."""
        since = now - runtime.window.span
        for at, verdict, late in await self._store.lane_window(runtime.id, since):
            if late:
                runtime.window.add_late(at, verdict)
            else:
                runtime.window.add_reply(at, verdict)

    def no_route(self, domain: str) -> SendOutcome:
        return SendOutcome(
            reply=None,
            failure=ConnectionFailure.dns,
            detail=f"no MX host for {domain} (DNS lookup failed)",
            stage="connect",
        )

    def drop_if_suppressed(self, claimed: Claimed, record: TickRecord) -> bool:
        if (
            claimed.address in self._suppressed
            or "@" + claimed.domain in self._suppressed
        ):
            record.dropped.append(claimed.id)
            return True
        return False

    def classify(self, outcome: SendOutcome, runtime: LaneRuntime) -> Classification:
        if outcome.failure is not None:
            return classify_failure(outcome.failure, outcome.detail)
        assert outcome.reply is not None
        return classify_reply(outcome.reply, overrides=runtime.schedule.patterns)

    def apply(
        self,
        runtime: LaneRuntime,
        claimed: Claimed,
        outcome: SendOutcome,
        now: datetime,
        record: TickRecord,
    ) -> None:
        result = self.classify(outcome, runtime)
        verdict = Verdict(result.verdict)
        decision = next_attempt(
            self._settings.delivery.retry,
            verdict=verdict,
            attempts=claimed.attempts,
            queued_at=claimed.queued_at,
            now=now,
            lane_fault=outcome.failure is not None,
        )
        text = str(outcome.reply) if outcome.reply is not None else outcome.detail
        record.attempts.append(
            AttemptRecord(
                recipient_id=claimed.id,
                lane_id=runtime.id,
                attempted_at=now,
                verdict=verdict.value,
                reason=result.reason,
                code=result.code,
                enhanced=result.enhanced,
                reply=text,
                rule=result.rule,
                decision=decision,
                attempts=claimed.attempts + (1 if decision.counts else 0),
            )
        )
        if decision.state is RecipientState.bounced:
            self._suppress(claimed, result.reason, now, record)
        next_window = next_window_open(now, runtime.schedule.window, runtime.tz)
        lane, events = on_reply(
            runtime.lane,
            verdict,
            now=now,
            schedule=runtime.schedule,
            next_window=next_window,
            reply=text,
            reason=result.reason,
            enhanced=result.enhanced,
        )
        runtime.window.add_reply(now, verdict)
        self._react(runtime, lane, events, text, record, now)
        reachable = outcome.failure not in UNREACHABLE or outcome.stage != "connect"
        runtime.reached(reachable, now, record)

    def apply_late(
        self,
        runtime: LaneRuntime,
        news: PendingLaneNews,
        now: datetime,
        record: TickRecord,
    ) -> None:
        """A bounce or complaint that arrived after the 250: the lane counts it
        and reacts as to a live reply (core.lane rule 6)."""
        next_window = next_window_open(now, runtime.schedule.window, runtime.tz)
        lane, events = on_late_verdict(
            runtime.lane,
            news.verdict,
            now=now,
            schedule=runtime.schedule,
            next_window=next_window,
            reply=news.reply,
        )
        runtime.window.add_late(now, news.verdict)
        text = f"late {news.verdict}: {news.reply}"
        self._react(runtime, lane, events, text, record, now)
        record.news_applied.append(news.id)

    def _react(
        self,
        runtime: LaneRuntime,
        lane: Lane,
        events: list[LaneEvent],
        text: str,
        record: TickRecord,
        now: datetime,
    ) -> None:
        if events:
            logger.info(
                "lane %s/%s: %s after %r",
                runtime.lane.ip,
                runtime.lane.isp,
                events[-1].cause,
                mask_addresses(text[:120]),
            )
        runtime.react(lane, events, record)
        runtime.judge_rates(now, record)
        if runtime.lane.state is LaneState.paused:
            self._return_buffer(runtime, record)

    async def after_expiry(
        self, claimed: Claimed, now: datetime, record: TickRecord
    ) -> None:
        """Suppress an address whose mail expired too many times in a row."""
        limit = self._settings.delivery.retry.suppress_after_expiries
        if await self._store.count_expired(claimed.address) + 1 >= limit:
            self._suppress(claimed, "repeated_soft", now, record)

    def _suppress(
        self, claimed: Claimed, reason: str, now: datetime, record: TickRecord
    ) -> None:
        target = bounce_target(claimed.address, claimed.domain, reason)
        entry: Suppression = make_suppression(
            target, reason=reason or "hard", source="smtp", now=now
        )
        record.suppressions.append(entry)
        self._suppressed.add(entry.address)

    def _return_buffer(self, runtime: LaneRuntime, record: TickRecord) -> None:
        """A paused lane gives its claimed mail back for other lanes to take."""
        runtime.hand_back(record)
