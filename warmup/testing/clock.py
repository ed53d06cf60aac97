"""FakeClock: a Clock whose time moves only when the test moves it.

The one virtual clock is ``warmup.app.clock.VirtualClock`` (the demo runs on
it); this only gives it a default start for tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from warmup.app.clock import VirtualClock

__all__ = ["FakeClock"]

DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock(VirtualClock):
    def __init__(self, start: datetime = DEFAULT_START) -> None:
        super().__init__(start)
