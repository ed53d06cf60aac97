"""The ISPs' own reputation data: fetched daily, stored, and read by the ramp.

:func:`fetch_reputation` reads Google Postmaster Tools (per sending domain) and
Microsoft SNDS (per IP) through a :class:`ReputationFeeds` port and stores what
it read; a feed that fails is logged once and the others still count. The
engine reads the stored figures on its maintenance beat
(:func:`apply_reputation`): the latest day of each domain and IP within
:data:`LOOKBACK` decides (rules in :mod:`warmup.core.lanes.reputation`); a hold stops
the ramp's advance (core.lanes.lane rule 5), a pause stops the lane for
:data:`REPUTATION_PAUSE` (rule 9), once per figure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from warmup.app.lanes import LaneRuntime
from warmup.core.attempt import TickRecord
from warmup.core.errors import FetchError
from warmup.core.lanes.lane import RampHold
from warmup.core.lanes.reputation import (
    PostmasterDay,
    ReputationAction,
    ReputationDecision,
    SNDSRow,
    decide_reputation,
)
from warmup.core.model import LaneCause
from warmup.core.settings import ReputationSettings

__all__ = [
    "FETCH_DAYS",
    "LOOKBACK",
    "REPUTATION_PAUSE",
    "FetchResult",
    "ReputationFeeds",
    "ReputationSource",
    "ReputationStore",
    "apply_reputation",
    "fetch_reputation",
    "latest_figures",
    "reputation_decisions",
]

logger = logging.getLogger(__name__)

#: Days asked of Postmaster Tools at each fetch (its figures come a day or two
#: late and are sometimes revised).
FETCH_DAYS = 7
#: A figure older than this decides nothing.
LOOKBACK = timedelta(days=7)
#: How long a "pause" figure stops the lane: a little over a day, so the next
#: daily fetch can renew it before it ends.
REPUTATION_PAUSE = timedelta(hours=26)
_SOURCE = "reputation"


class ReputationFeeds(Protocol):
    async def postmaster(
        self, domain: str, start: date, end: date
    ) -> list[PostmasterDay]: ...

    async def snds(self) -> list[SNDSRow]: ...


class ReputationSource(Protocol):
    async def reputation_days(
        self, since: date | None = None
    ) -> tuple[list[PostmasterDay], list[SNDSRow]]: ...


class ReputationStore(ReputationSource, Protocol):
    async def save_reputation(
        self,
        postmaster: Sequence[PostmasterDay],
        snds: Sequence[SNDSRow],
        now: datetime,
    ) -> int: ...


@dataclass(slots=True)
class FetchResult:
    postmaster: list[PostmasterDay] = field(default_factory=list)
    snds: list[SNDSRow] = field(default_factory=list)
    errors: list[FetchError] = field(default_factory=list)
    stored: int = 0


async def fetch_reputation(
    feeds: ReputationFeeds,
    store: ReputationStore,
    settings: ReputationSettings,
    now: datetime,
) -> FetchResult:
    """Read every configured feed once and store what was read."""
    result = FetchResult()
    google = settings.google_postmaster
    if google.enabled:
        end = now.date()
        start = end - timedelta(days=FETCH_DAYS)
        for domain in google.domains:
            try:
                result.postmaster += await feeds.postmaster(domain, start, end)
            except FetchError as exc:
                result.errors.append(exc)
    if settings.snds.enabled:
        try:
            result.snds = await feeds.snds()
        except FetchError as exc:
            result.errors.append(exc)
    for error in result.errors:
        logger.warning("%s", error)
    result.stored = await store.save_reputation(result.postmaster, result.snds, now)
    logger.info(
        "reputation: %d Postmaster days, %d SNDS rows read (%d failed)",
        len(result.postmaster),
        len(result.snds),
        len(result.errors),
    )
    return result


def latest_figures(
    postmaster: Iterable[PostmasterDay], snds: Iterable[SNDSRow]
) -> tuple[list[PostmasterDay], list[SNDSRow]]:
    """The latest day of each domain (Postmaster) and each IP (SNDS)."""
    domains: dict[str, PostmasterDay] = {}
    for day in postmaster:
        if day.domain not in domains or day.day >= domains[day.domain].day:
            domains[day.domain] = day
    ips: dict[str, SNDSRow] = {}
    for row in snds:
        known = ips.get(row.ip)
        if known is None or (row.day or date.min) >= (known.day or date.min):
            ips[row.ip] = row
    return [domains[k] for k in sorted(domains)], [ips[k] for k in sorted(ips)]


async def reputation_decisions(
    store: ReputationSource,
    *,
    ips: Sequence[str],
    domains: Sequence[str],
    now: datetime,
) -> dict[tuple[str, str], ReputationDecision]:
    """Per (IP, ISP), what the latest figures within LOOKBACK decide. Every
    source IP counts as sending every configured domain."""
    postmaster, snds = await store.reputation_days(since=(now - LOOKBACK).date())
    wanted = set(ips)
    latest_days, latest_rows = latest_figures(
        (day for day in postmaster if day.domain in domains),
        (row for row in snds if row.ip in wanted),
    )
    decisions = decide_reputation(
        postmaster=latest_days,
        snds=latest_rows,
        ips_of_domain={domain: tuple(ips) for domain in domains},
    )
    return {(d.ip, d.isp): d for d in decisions}


async def apply_reputation(
    store: ReputationSource,
    runtimes: Iterable[LaneRuntime],
    *,
    ips: Sequence[str],
    settings: ReputationSettings,
    now: datetime,
    record: TickRecord,
) -> None:
    """The maintenance beat's look at the stored figures, for each lane."""
    decisions = await reputation_decisions(
        store, ips=ips, domains=settings.google_postmaster.domains, now=now
    )
    for runtime in runtimes:
        _apply(runtime, decisions, now, record)


def _apply(
    runtime: LaneRuntime,
    decisions: Mapping[tuple[str, str], ReputationDecision],
    now: datetime,
    record: TickRecord,
) -> None:
    decision = decisions.get((runtime.lane.ip, runtime.lane.isp))
    if decision is None:
        runtime.set_hold(_SOURCE, None, now, record)
        runtime.reputation_paused = None
        return
    hold = RampHold(cause=LaneCause.reputation_hold, detail=decision.cause)
    if decision.action is ReputationAction.pause:
        runtime.set_hold(_SOURCE, hold, now, record, announce=False)
        runtime.pause_for_reputation(
            decision.cause, now + REPUTATION_PAUSE, now, record
        )
        return
    runtime.reputation_paused = None
    runtime.set_hold(_SOURCE, hold, now, record)
