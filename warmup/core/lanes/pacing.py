"""Even pacing of one lane inside its daily window (all pure; time passed in).

Rules:

1. A lane with rate R (messages per hour) gets one send slot every 3600/R seconds.
2. Slots exist only inside the window (local time of the config's zone); the first
   slot of a window is at the window's opening instant.
3. So a window of H hours holds at most floor(R * H) slots, and any 60 s hold at
   most ceil(R/60) + 1 of them.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, tzinfo

from warmup.core.lanes.schedule import Window

__all__ = [
    "local_day",
    "max_per_minute",
    "next_slot",
    "next_window_open",
    "slot_interval",
    "window_bounds",
    "window_containing",
]

_DAY = timedelta(days=1)


_HOUR_US = 3_600_000_000


def slot_interval(per_hour: float) -> timedelta:
    """3600/R seconds, rounded up to the microsecond: rounded down (as
    ``timedelta(seconds=3600 / 7)`` is), R slots would end a hair before the
    hour and a window would hold one slot more than rule 3 allows."""
    if per_hour <= 0:
        raise ValueError(f"rate must be positive, got {per_hour!r}")
    return timedelta(microseconds=math.ceil(_HOUR_US / per_hour))


def local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def window_bounds(day: date, window: Window, tz: tzinfo) -> tuple[datetime, datetime]:
    """The window that opens on local ``day``, as aware instants."""
    start = datetime.combine(day, window.start, tzinfo=tz)
    return start, start + window.duration


def window_containing(
    moment: datetime, window: Window, tz: tzinfo
) -> tuple[datetime, datetime] | None:
    """The window instance containing ``moment``, or None if outside every window."""
    today = local_day(moment, tz)
    for day in (today - _DAY, today):
        start, end = window_bounds(day, window, tz)
        if start <= moment < end:
            return start, end
    return None


def next_window_open(moment: datetime, window: Window, tz: tzinfo) -> datetime:
    """The first window opening at or after ``moment``."""
    today = local_day(moment, tz)
    for offset in range(3):
        start, _ = window_bounds(today + offset * _DAY, window, tz)
        if start >= moment:
            return start
    raise AssertionError("a window opens every day")  # pragma: no cover


def next_slot(
    *,
    last_sent_at: datetime | None,
    per_hour: float,
    window: Window,
    tz: tzinfo,
    now: datetime,
) -> datetime:
    """The earliest instant >= the pacing slot after ``last_sent_at`` inside a window.

    Never earlier than ``now`` would need: callers compare the result with now.
    """
    earliest = now if last_sent_at is None else last_sent_at + slot_interval(per_hour)
    if window.all_day:
        return earliest
    current = window_containing(earliest, window, tz)
    if current is not None:
        return earliest
    return next_window_open(earliest, window, tz)


def max_per_minute(per_hour: float) -> int:
    """The most sends any 60 s may hold at this rate: ceil(R/60) + 1."""
    return math.ceil(per_hour / 60) + 1
