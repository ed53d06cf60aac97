"""Pacing inside the daily window (core/lanes/pacing.py): table-driven, time passed
in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup.core.lanes.pacing import (
    local_day,
    max_per_minute,
    next_slot,
    next_window_open,
    slot_interval,
    window_bounds,
    window_containing,
)
from warmup.core.lanes.schedule import Window

TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9, no DST
NIGHT = Window(start=time(22), end=time(2))  # crosses midnight
MORNING = Window(start=time(9), end=time(12))
ALL_DAY = Window()


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("per_hour", "interval"),
    [
        (60, timedelta(seconds=60)),
        (3600, timedelta(seconds=1)),
        (0.5, timedelta(hours=2)),
        # 514.2857142... s: rounded up to the microsecond, never down, or R slots
        # would end a hair before the hour and an (R+1)-th would fit.
        (7, timedelta(seconds=514, microseconds=285715)),
    ],
)
def test_slot_interval_is_an_hour_over_the_rate(
    per_hour: float, interval: timedelta
) -> None:
    assert slot_interval(per_hour) == interval


@pytest.mark.parametrize("per_hour", [0, -1, -0.5])
def test_slot_interval_refuses_a_rate_that_is_not_positive(per_hour: float) -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        slot_interval(per_hour)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(1, 14, 59), date(2030, 1, 1)),  # 23:59 in Tokyo
        (utc(1, 15, 0), date(2030, 1, 2)),  # midnight in Tokyo
    ],
)
def test_local_day_is_the_day_in_the_zone(moment: datetime, expected: date) -> None:
    assert local_day(moment, TOKYO) == expected


@pytest.mark.parametrize(
    ("window", "start", "end"),
    [
        (MORNING, utc(1, 0), utc(1, 3)),  # 09:00-12:00 Tokyo
        (NIGHT, utc(1, 13), utc(1, 17)),  # 22:00 Tokyo to 02:00 the next day
        (ALL_DAY, datetime(2029, 12, 31, 15, tzinfo=UTC), utc(1, 15)),
    ],
)
def test_window_bounds_on_a_local_day(
    window: Window, start: datetime, end: datetime
) -> None:
    assert window_bounds(date(2030, 1, 1), window, TOKYO) == (start, end)


@pytest.mark.parametrize(
    ("window", "moment", "expected"),
    [
        (MORNING, utc(1, 0), (utc(1, 0), utc(1, 3))),  # the opening instant is in
        (MORNING, utc(1, 2, 59), (utc(1, 0), utc(1, 3))),
        (MORNING, utc(1, 3), None),  # the end is not
        (MORNING, utc(1, 12), None),
        # 01:00 Tokyo on Jan 2 belongs to the window that opened on Jan 1.
        (NIGHT, utc(1, 16), (utc(1, 13), utc(1, 17))),
        (NIGHT, utc(1, 17), None),
    ],
)
def test_window_containing(
    window: Window, moment: datetime, expected: tuple[datetime, datetime] | None
) -> None:
    assert window_containing(moment, window, TOKYO) == expected


@pytest.mark.parametrize(
    ("window", "moment", "expected"),
    [
        (MORNING, utc(1, 0), utc(1, 0)),  # opening now counts
        (MORNING, utc(1, 1), utc(2, 0)),  # inside: the next one is tomorrow
        (MORNING, utc(1, 23), utc(2, 0)),  # 08:00 Tokyo: in an hour
        (NIGHT, utc(1, 16), utc(2, 13)),
    ],
)
def test_next_window_open(window: Window, moment: datetime, expected: datetime) -> None:
    assert next_window_open(moment, window, TOKYO) == expected


@pytest.mark.parametrize(
    ("last_sent_at", "per_hour", "window", "now", "expected"),
    [
        # Never sent: now, if inside the window; else the next opening.
        (None, 60, MORNING, utc(1, 1), utc(1, 1)),
        (None, 60, MORNING, utc(1, 4), utc(2, 0)),
        # One slot after the last send, inside the window.
        (utc(1, 1), 60, MORNING, utc(1, 1), utc(1, 1, 1)),
        (utc(1, 1), 6, MORNING, utc(1, 1), utc(1, 1, 10)),
        # The slot falls past the window's end: the next opening.
        (utc(1, 2, 59), 60, MORNING, utc(1, 2, 59), utc(2, 0)),
        # All day: only the interval counts.
        (utc(1, 23, 59), 60, ALL_DAY, utc(1, 23, 59), utc(2, 0)),
        (None, 60, ALL_DAY, utc(1, 5), utc(1, 5)),
    ],
)
def test_next_slot(
    last_sent_at: datetime | None,
    per_hour: float,
    window: Window,
    now: datetime,
    expected: datetime,
) -> None:
    slot = next_slot(
        last_sent_at=last_sent_at, per_hour=per_hour, window=window, tz=TOKYO, now=now
    )
    assert slot == expected


@pytest.mark.parametrize(
    ("per_hour", "expected"), [(1, 2), (60, 2), (61, 3), (120, 3), (600, 11)]
)
def test_max_per_minute(per_hour: float, expected: int) -> None:
    assert max_per_minute(per_hour) == expected


@settings(deadline=None, max_examples=60)
@given(
    per_hour=st.integers(min_value=1, max_value=240),
    start=st.integers(min_value=0, max_value=23),
    hours=st.integers(min_value=1, max_value=6),
)
def test_a_window_holds_at_most_rate_times_hours_slots(
    per_hour: int, start: int, hours: int
) -> None:
    """Rule 3: walking the slots through one window never exceeds floor(R*H),
    and no 60 s holds more than max_per_minute(R)."""
    window = Window(start=time(start), end=time((start + hours) % 24))
    opening, closing = window_bounds(date(2030, 1, 1), window, TOKYO)
    slots: list[datetime] = []
    last: datetime | None = None
    for _ in range(per_hour * hours + 2):  # bounded: one more than can fit
        slot = next_slot(
            last_sent_at=last, per_hour=per_hour, window=window, tz=TOKYO, now=opening
        )
        if slot >= closing:
            break
        slots.append(slot)
        last = slot
    assert len(slots) <= per_hour * hours
    limit = max_per_minute(per_hour)
    for index, slot in enumerate(slots):
        within = [
            s
            for s in slots[index : index + limit + 1]
            if s - slot < timedelta(minutes=1)
        ]
        assert len(within) <= limit
