"""Routing queued domains by MX, with dead answers taken as evidence.

Each maintenance beat looks up the domains whose recipients have no ISP yet
(rules in :mod:`warmup.core.recipients.dns_evidence`): a good answer routes the domain;
NXDOMAIN
or a Null MX defers its recipients until it is confirmed over time, and only then
bounces them and suppresses the domain (``hostunknown``, source ``dns``); SERVFAIL
and timeouts leave them queued. A domain named in ``delivery.routes`` is never looked
up. The evidence is kept in the store, so every node and a restarted one weigh the
same lookups.

:func:`recheck_dns_suppressions` is the calendar job that lifts a DNS suppression
once the domain resolves again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from warmup.app.ports import EngineStore, Resolver, Store
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import SuppressionKind
from warmup.core.recipients.dns_evidence import (
    DeadEvidence,
    DNSStep,
    decide_dns,
    decide_recheck,
)
from warmup.core.recipients.routing import DEFAULT_ISP, domain_index, isp_by_mx
from warmup.core.settings import DeliverySettings, DNSSettings

__all__ = ["DomainRouter", "RecheckResult", "recheck_dns_suppressions"]

logger = logging.getLogger(__name__)


class DomainRouter:
    """Routes the queue's unrouted domains; see the module docstring."""

    def __init__(
        self,
        *,
        store: EngineStore,
        resolver: Resolver,
        schedules: Mapping[str, Schedule],
        delivery: DeliverySettings,
        dns: DNSSettings,
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._schedules = schedules
        self._by_name = domain_index(schedules.values())
        self._delivery = delivery
        self._dns = dns

    async def route(self, now: datetime) -> None:
        domains = await self._store.unrouted_domains()
        routes = self._delivery.routes
        for domain in [d for d in domains if d.lower() in routes]:
            # Configured by name: its route is the answer, DNS is not asked.
            await self._store.route_domain(domain, self._isp_by_name(domain), now)
        rest = [d for d in domains if d.lower() not in routes]
        known = await self._store.dns_evidence(rest) if rest else {}
        for domain in rest:
            evidence, next_check = known.get(domain, (None, now))
            if next_check <= now:
                await self._look_up(domain, evidence, now)

    def _isp_by_name(self, domain: str) -> str:
        return self._by_name.get(domain.lower(), DEFAULT_ISP)

    async def _look_up(
        self, domain: str, known: DeadEvidence | None, now: datetime
    ) -> None:
        answer = await self._resolver.mx(domain)
        decision = decide_dns(
            answer.error,
            known,
            now=now,
            confirm_after=self._dns.confirm_after,
            retry=self._delivery.retry,
        )
        if decision.step is DNSStep.route:
            if known is not None:
                await self._store.forget_dns_evidence(domain)
            isp = isp_by_mx(answer.hosts, self._schedules.values())
            await self._store.route_domain(domain, isp, now)
            return
        evidence = decision.evidence
        if decision.step is DNSStep.fail and evidence is not None:
            await self._fail(domain, evidence, now)
        elif decision.step is DNSStep.defer and evidence is not None:
            next_check = decision.next_check_at or now
            await self._store.save_dns_evidence(domain, evidence, next_check)
            reply = f"DNS: {evidence.error} for {domain}, not yet confirmed"
            await self._store.defer_domain(domain, reply, next_check, now)
        # A temporary failure (SERVFAIL, timeout) changes nothing: asked again at
        # the next beat, with the evidence as it was.

    async def _fail(self, domain: str, evidence: DeadEvidence, now: datetime) -> None:
        reply = (
            f"no mail for {domain}: {evidence.error} since {evidence.first_at:%F %T}"
        )
        count = await self._store.fail_domain(domain, reply, now)
        logger.warning(
            "domain %s cannot receive mail (%s, %d lookups since %s): "
            "%d recipients bounced",
            domain,
            evidence.error,
            evidence.lookups,
            evidence.first_at,
            count,
        )


@dataclass(frozen=True, slots=True)
class RecheckResult:
    lifted: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


async def recheck_dns_suppressions(
    store: Store,
    resolver: Resolver,
    *,
    now: datetime,
    recheck_after: timedelta,
    routes: Mapping[str, object],
) -> RecheckResult:
    """Look up each domain suppressed on DNS evidence that is due; lift the ones
    that resolve again (they take mail: their recipients may be mailed again)."""
    lifted: list[str] = []
    kept: list[str] = []
    async for entry in store.iter_suppressions(source="dns"):
        if entry.kind is not SuppressionKind.domain:
            continue
        domain = entry.address.lstrip("@")
        if domain in routes:
            continue  # never looked up; a route-listed domain is lifted by hand
        if (
            decide_recheck(
                None,
                suppressed_at=entry.created_at,
                now=now,
                recheck_after=recheck_after,
            )
            is None
        ):
            continue
        answer = await resolver.mx(domain)
        if decide_recheck(
            answer.error,
            suppressed_at=entry.created_at,
            now=now,
            recheck_after=recheck_after,
        ):
            lifted.append(entry.address)
        else:
            kept.append(entry.address)
    if lifted:
        await store.remove_suppressions(lifted)
        logger.info("DNS recheck: %d domains resolve again, lifted", len(lifted))
    return RecheckResult(lifted=tuple(lifted), kept=tuple(kept))
