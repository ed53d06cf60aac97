"""One virtual clock: the demo's, which the tests' FakeClock only gives a start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmup.app.clock import VirtualClock
from warmup.testing.clock import FakeClock

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_fake_clock_is_the_virtual_clock() -> None:
    clock = FakeClock()
    assert isinstance(clock, VirtualClock)
    assert clock.now() == START


async def test_time_moves_only_forward_and_only_when_told() -> None:
    clock = VirtualClock(START)
    clock.advance(timedelta(minutes=5))
    await clock.sleep(60)
    assert clock.now() == START + timedelta(minutes=6)
    await clock.sleep(-10)  # as asyncio.sleep: no delay at all
    clock.advance_to(START)  # passed already: stays
    assert clock.now() == START + timedelta(minutes=6)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2030, 1, 1))  # noqa: DTZ001
