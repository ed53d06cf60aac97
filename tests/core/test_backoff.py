"""What happens to a recipient after an attempt, and holding a lane whose ISP
cannot be reached (core/lanes/backoff.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup.core.lanes.backoff import RetryDecision, next_attempt, unreachable_hold
from warmup.core.model import RecipientState as RS
from warmup.core.model import Verdict
from warmup.core.settings import RetryPolicy

MINUTE = timedelta(minutes=1)


def test_the_hold_starts_at_the_third_failure_and_doubles_to_the_cap() -> None:
    holds = [unreachable_hold(n) for n in range(1, 10)]
    assert holds == [None, None, *(MINUTE * m for m in (1, 2, 4, 8, 16, 30, 30))]


@given(st.integers(min_value=0, max_value=10**6))
def test_the_hold_never_exceeds_the_cap_nor_shrinks(failures: int) -> None:
    hold = unreachable_hold(failures)
    after = unreachable_hold(failures + 1)
    if hold is None:
        assert failures < 3
        return
    assert after is not None
    assert MINUTE <= hold <= after <= timedelta(minutes=30)


QUEUED_AT = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(
    intervals=(timedelta(minutes=15), timedelta(hours=1)),
    expire_after=timedelta(hours=3),
)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("verdict", "attempts", "age", "lane_fault", "expected"),
    [
        # Delivered and hard are final, whatever the age.
        (Verdict.delivered, 0, 9 * H, False, RetryDecision(state=RS.delivered)),
        (Verdict.hard, 3, 0 * H, False, RetryDecision(state=RS.bounced)),
        # Soft: retry after the interval for this attempt (the last one repeats).
        (
            Verdict.soft,
            0,
            0 * H,
            False,
            RetryDecision(state=RS.queued, next_attempt_at=QUEUED_AT + 15 * M),
        ),
        (
            Verdict.soft,
            5,
            1 * H,
            False,
            RetryDecision(state=RS.queued, next_attempt_at=QUEUED_AT + 2 * H),
        ),
        # Soft, but the retry would land past expire_after, or it is already past.
        (Verdict.soft, 1, 2 * H + M, False, RetryDecision(state=RS.expired)),
        (Verdict.soft, 0, 3 * H, False, RetryDecision(state=RS.expired)),
        # Throttle: the lane's trouble; same lane, now, not counted.
        (
            Verdict.throttle,
            2,
            1 * H,
            False,
            RetryDecision(
                state=RS.queued,
                next_attempt_at=QUEUED_AT + H,
                counts=False,
                keep_lane=True,
            ),
        ),
        # Block and connection failures: requeued for any lane, not counted.
        (
            Verdict.block,
            0,
            0 * H,
            False,
            RetryDecision(state=RS.queued, next_attempt_at=QUEUED_AT, counts=False),
        ),
        (
            Verdict.soft,
            0,
            0 * H,
            True,
            RetryDecision(state=RS.queued, next_attempt_at=QUEUED_AT, counts=False),
        ),
        # ... unless the recipient has expired meanwhile (still not counted).
        (
            Verdict.throttle,
            0,
            3 * H,
            False,
            RetryDecision(state=RS.expired, counts=False),
        ),
        (Verdict.soft, 0, 4 * H, True, RetryDecision(state=RS.expired, counts=False)),
    ],
)
def test_next_attempt(
    verdict: Verdict,
    attempts: int,
    age: timedelta,
    lane_fault: bool,
    expected: RetryDecision,
) -> None:
    decision = next_attempt(
        POLICY,
        verdict=verdict,
        attempts=attempts,
        queued_at=QUEUED_AT,
        now=QUEUED_AT + age,
        lane_fault=lane_fault,
    )
    assert decision == expected


@given(
    verdict=st.sampled_from(list(Verdict)),
    attempts=st.integers(min_value=0, max_value=50),
    age_minutes=st.integers(min_value=0, max_value=10 * 60),
    lane_fault=st.booleans(),
)
def test_a_retry_is_never_scheduled_past_expiry(
    verdict: Verdict, attempts: int, age_minutes: int, lane_fault: bool
) -> None:
    now = QUEUED_AT + timedelta(minutes=age_minutes)
    decision = next_attempt(
        POLICY,
        verdict=verdict,
        attempts=attempts,
        queued_at=QUEUED_AT,
        now=now,
        lane_fault=lane_fault,
    )
    if decision.state is RS.queued:
        assert decision.next_attempt_at is not None
        assert now <= decision.next_attempt_at <= QUEUED_AT + POLICY.expire_after
    else:
        assert decision.next_attempt_at is None
