"""From a send's outcome to everything that follows: verdict, retry, suppression,
lane reaction — the same code path for every reply and every late report.

What follows is decided by :func:`warmup.core.lanes.reaction.consequences` (pure); this
module classifies the outcome, gathers what the decision needs (the lane, its
rolling window, an address's expiries) and applies the result to the lane at run
time and the tick's record."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from warmup.app.lanes import LaneRuntime
from warmup.app.ports import EngineStore, Resolver
from warmup.app.settings import EngineSettings
from warmup.core.attempt import AttemptRecord, Claimed, SendOutcome, TickRecord
from warmup.core.bounces.late import PendingLateReport
from warmup.core.lanes.backoff import UNREACHABLE
from warmup.core.lanes.reaction import (
    Consequences,
    LaneView,
    RecipientView,
    Said,
    Source,
    consequences,
)
from warmup.core.model import LaneState, SendStage, Verdict
from warmup.core.recipients.address import mask_addresses
from warmup.core.recipients.routing import Hop, next_hop
from warmup.core.recipients.suppression import is_suppressed
from warmup.core.replies.classify import (
    Classification,
    ConnectionFailure,
    classify_failure,
    classify_reply,
)

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

    async def load_windows(
        self, runtimes: Sequence[LaneRuntime], now: datetime
    ) -> None:
        """Rebuild freshly loaded lanes' rolling windows from the store."""
        by_span: dict[timedelta, list[LaneRuntime]] = {}
        for runtime in runtimes:
            by_span.setdefault(runtime.window.span, []).append(runtime)
        for span, group in by_span.items():
            windows = await self._store.lane_windows([r.id for r in group], now - span)
            for runtime in group:
                for at, verdict, late in windows[runtime.id]:
                    if late:
                        runtime.window.add_late(at, verdict)
                    else:
                        runtime.window.add_reply(at, verdict)

    def no_route(self, domain: str) -> SendOutcome:
        return SendOutcome(
            reply=None,
            failure=ConnectionFailure.dns,
            detail=f"no MX host for {domain} (DNS lookup failed)",
            stage=SendStage.connect,
        )

    def drop_if_suppressed(self, claimed: Claimed, record: TickRecord) -> bool:
        if is_suppressed(claimed.address, self._suppressed):
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
    ) -> Consequences:
        """React to a send's outcome (core.lanes.reaction, source ``reply``); the
        caller follows an ``expired`` result up with :meth:`after_expiry`."""
        result = self.classify(outcome, runtime)
        text = str(outcome.reply) if outcome.reply is not None else outcome.detail
        said = Said(
            source=Source.reply,
            verdict=Verdict(result.verdict),
            reason=result.reason,
            enhanced=result.enhanced,
            text=text,
            lane_fault=outcome.failure is not None,
        )
        done = self._consequences(said, runtime, now, recipient=_view(claimed))
        assert done.decision is not None
        assert done.attempts is not None
        record.attempts.append(
            AttemptRecord(
                recipient_id=claimed.id,
                lane_id=runtime.id,
                attempted_at=now,
                verdict=said.verdict,
                reason=result.reason,
                code=result.code,
                enhanced=result.enhanced,
                reply=text,
                rule=result.rule,
                decision=done.decision,
                attempts=done.attempts,
            )
        )
        self._suppress(done, record)
        self._react(runtime, done, text, record, now)
        reachable = outcome.failure not in UNREACHABLE or outcome.stage != "connect"
        runtime.reached(reachable, now, record)
        return done

    def apply_late(
        self,
        runtime: LaneRuntime,
        news: PendingLateReport,
        now: datetime,
        record: TickRecord,
    ) -> None:
        """A bounce or complaint that arrived after the 250: the lane counts it
        and reacts as to a live reply (core.lanes.lane rule 6). Its recipient side was
        saved at intake (warmup.app.ingest, the same core.lanes.reaction)."""
        said = Said(source=Source.late, verdict=news.verdict, text=news.reply)
        done = self._consequences(said, runtime, now, recipient=None)
        self._react(runtime, done, f"late {news.verdict}: {news.reply}", record, now)
        record.late_reports_applied.append(news.id)

    async def after_expiry(
        self, claimed: Claimed, now: datetime, record: TickRecord
    ) -> None:
        """Suppress an address whose mail expired too many times in a row."""
        said = Said(source=Source.expiry, verdict=Verdict.soft)
        history = await self._store.count_expired(claimed.address)
        done = consequences(
            said,
            recipient=_view(claimed, expired_in_a_row=history),
            lane=None,
            now=now,
            retry=self._settings.delivery.retry,
        )
        self._suppress(done, record)

    def _consequences(
        self,
        said: Said,
        runtime: LaneRuntime,
        now: datetime,
        *,
        recipient: RecipientView | None,
    ) -> Consequences:
        lane = LaneView(
            lane=runtime.lane,
            schedule=runtime.schedule,
            next_window=runtime.next_window(now),
            window=runtime.window.counts(now),
        )
        return consequences(
            said,
            recipient=recipient,
            lane=lane,
            now=now,
            retry=self._settings.delivery.retry,
        )

    def _react(
        self,
        runtime: LaneRuntime,
        done: Consequences,
        text: str,
        record: TickRecord,
        now: datetime,
    ) -> None:
        """Apply the lane side of ``done``: its new state and events, the
        rolling window; a paused lane gives its claimed mail back."""
        assert done.lane is not None
        if done.events:
            logger.info(
                "lane %s/%s: %s after %r",
                runtime.lane.ip,
                runtime.lane.isp,
                done.events[0].cause,
                mask_addresses(text[:120]),
            )
        if done.window_reset:
            runtime.window.clear()
        else:
            runtime.window.add_counts(now, done.window_add)
        runtime.react(done.lane, list(done.events), record)
        if runtime.lane.state is LaneState.paused:
            self._return_buffer(runtime, record)

    def _suppress(self, done: Consequences, record: TickRecord) -> None:
        if done.suppression is not None:
            record.suppressions.append(done.suppression)
            self._suppressed.add(done.suppression.address)

    def _return_buffer(self, runtime: LaneRuntime, record: TickRecord) -> None:
        """A paused lane gives its claimed mail back for other lanes to take."""
        runtime.hand_back(record)


def _view(claimed: Claimed, *, expired_in_a_row: int = 0) -> RecipientView:
    return RecipientView(
        address=claimed.address,
        domain=claimed.domain,
        attempts=claimed.attempts,
        queued_at=claimed.queued_at,
        expired_in_a_row=expired_in_a_row,
    )
