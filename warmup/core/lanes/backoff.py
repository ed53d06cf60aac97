"""What happens to a recipient after an attempt: done, retry later, or expire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from warmup.core.model import RecipientState, Verdict
from warmup.core.replies.classify import ConnectionFailure
from warmup.core.settings import RetryPolicy

__all__ = ["UNREACHABLE", "RetryDecision", "next_attempt", "unreachable_hold"]

#: Failures that mean the ISP's hosts could not be reached at all: they say nothing
#: about how the ISP sees us, so they hold the lane (below) rather than back it off.
UNREACHABLE = frozenset(
    {ConnectionFailure.refused, ConnectionFailure.timeout, ConnectionFailure.reset}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDecision:
    state: RecipientState
    next_attempt_at: datetime | None = None
    # Whether the attempt counts against the recipient (not for lane-side trouble).
    counts: bool = True
    # Keep the recipient on the lane that tried it (throttles: same lane, later).
    keep_lane: bool = False


def next_attempt(
    policy: RetryPolicy,
    *,
    verdict: Verdict,
    attempts: int,
    queued_at: datetime,
    now: datetime,
    lane_fault: bool = False,
) -> RetryDecision:
    """Decide the recipient's next state after an attempt with ``verdict``.

    ``attempts`` counts earlier attempts that counted. Throttles and blocks (and
    connection failures, ``lane_fault``) are the lane's trouble: the recipient is
    requeued without counting the attempt, on the same lane after a throttle.
    """
    if verdict is Verdict.delivered:
        return RetryDecision(state=RecipientState.delivered)
    if verdict is Verdict.hard:
        return RetryDecision(state=RecipientState.bounced)
    expired = now - queued_at >= policy.expire_after
    if verdict in (Verdict.throttle, Verdict.block) or lane_fault:
        if expired:
            return RetryDecision(state=RecipientState.expired, counts=False)
        return RetryDecision(
            state=RecipientState.queued,
            next_attempt_at=now,
            counts=False,
            keep_lane=verdict is Verdict.throttle,
        )
    retry_at = now + policy.interval(attempts + 1)
    if expired or retry_at - queued_at > policy.expire_after:
        return RetryDecision(state=RecipientState.expired)
    return RetryDecision(state=RecipientState.queued, next_attempt_at=retry_at)


def unreachable_hold(
    failures: int,
    *,
    after: int = 3,
    first: timedelta = timedelta(minutes=1),
    cap: timedelta = timedelta(minutes=30),
) -> timedelta | None:
    """How long a lane stops sending after ``failures`` sends in a row found no
    reachable host: nothing for the first ``after - 1``, then ``first``, doubling
    with every further failure up to ``cap``. Each held send would only wait out a
    connect timeout and put its recipient back."""
    if failures < after:
        return None
    doublings: int = min(failures - after, 16)
    return min(first * (1 << doublings), cap)
