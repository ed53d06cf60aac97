"""The wall clock: the only code allowed to read real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

__all__ = ["SystemClock"]


class SystemClock:
    """A Clock reading the system's real time (aware UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
