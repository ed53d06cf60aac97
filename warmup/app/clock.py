"""Clocks: the wall clock (the only code allowed to read real time) and the
virtual clock of `warmup demo` and the tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

__all__ = ["SystemClock", "VirtualClock"]


class SystemClock:
    """A Clock reading the system's real time (aware UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class VirtualClock:
    """Simulated time (`warmup demo`, and tests through ``warmup.testing.FakeClock``):
    it moves only when told to, never backwards; ``sleep`` moves it at once."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware, got {start!r}")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError(f"cannot move the clock backwards by {delta!r}")
        self._now += delta

    def advance_to(self, moment: datetime) -> None:
        """Move to ``moment`` (no-op if it has passed)."""
        self._now = max(self._now, moment)

    async def sleep(self, seconds: float) -> None:
        """Like ``asyncio.sleep``: a negative delay is none; still yields."""
        self.advance(timedelta(seconds=max(seconds, 0.0)))
        await asyncio.sleep(0)
