"""Holding a lane whose ISP cannot be reached."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from warmup.core.backoff import unreachable_hold

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
