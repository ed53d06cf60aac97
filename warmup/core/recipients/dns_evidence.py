"""DNS answers as evidence: a domain is declared dead only when confirmed over time.

Rules:

1. NXDOMAIN or a Null MX (RFC 7505) is *evidence*, not a verdict. A domain is dead
   (its queued recipients bounce, the domain is suppressed as ``hostunknown``) only
   when at least two lookups spanning at least ``confirm_after`` gave such an answer,
   with no good answer in between.
2. Until then its recipients are deferred (``soft``): the next lookup is due after the
   retry schedule's next interval, never later than the instant the evidence can be
   confirmed.
3. An answer with MX hosts forgets the evidence and routes the domain. SERVFAIL and
   timeouts (``temporary``) neither add nor remove evidence: always ``soft``.
4. A domain suppressed on DNS evidence is looked up again once the suppression is
   ``recheck_after`` old, and lifted when the domain resolves (:func:`decide_recheck`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from warmup.core.settings import RetryPolicy

__all__ = [
    "DEAD_ANSWERS",
    "DNSDecision",
    "DNSStep",
    "DeadEvidence",
    "decide_dns",
    "decide_recheck",
]

#: The answers that say a domain takes no mail.
DEAD_ANSWERS = frozenset({"nxdomain", "nullmx"})


class DNSStep(StrEnum):
    """What to do with a domain's queued recipients after a lookup."""

    route = "route"  # it resolves: deliver by its MX
    defer = "defer"  # dead for now, not yet confirmed: retry later (soft)
    fail = "fail"  # dead, confirmed: bounce and suppress the domain (hard)
    retry = "retry"  # the lookup itself failed (SERVFAIL, timeout): soft


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadEvidence:
    """Lookups that found a domain dead, since its last good answer."""

    error: str
    first_at: datetime
    last_at: datetime
    lookups: int

    def __post_init__(self) -> None:
        if self.error not in DEAD_ANSWERS:
            raise ValueError(f"not a dead-domain answer: {self.error!r}")
        if self.lookups < 1 or self.last_at < self.first_at:
            raise ValueError(f"inconsistent evidence: {self!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSDecision:
    step: DNSStep
    evidence: DeadEvidence | None = None
    next_check_at: datetime | None = None


def decide_dns(
    error: str | None,
    evidence: DeadEvidence | None,
    *,
    now: datetime,
    confirm_after: timedelta,
    retry: RetryPolicy,
) -> DNSDecision:
    """The step after a lookup that answered ``error`` (None: MX hosts found)."""
    if error is None:
        return DNSDecision(step=DNSStep.route)
    if error not in DEAD_ANSWERS:
        return DNSDecision(step=DNSStep.retry, evidence=evidence, next_check_at=now)
    first_at = evidence.first_at if evidence is not None else now
    lookups = evidence.lookups + 1 if evidence is not None else 1
    seen = DeadEvidence(error=error, first_at=first_at, last_at=now, lookups=lookups)
    confirmed_at = first_at + confirm_after
    if lookups >= 2 and now >= confirmed_at:
        return DNSDecision(step=DNSStep.fail, evidence=seen)
    next_check = now + retry.interval(lookups)
    if now < confirmed_at:
        next_check = min(next_check, confirmed_at)
    return DNSDecision(step=DNSStep.defer, evidence=seen, next_check_at=next_check)


def decide_recheck(
    error: str | None,
    *,
    suppressed_at: datetime,
    now: datetime,
    recheck_after: timedelta,
) -> bool | None:
    """Whether a DNS suppression is lifted: None when it is not due for a look,
    True when the domain resolves again, False when it stays (dead or unsure)."""
    if now - suppressed_at < recheck_after:
        return None
    return error is None
