from __future__ import annotations

from datetime import time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup.core.duration import format_duration, parse_duration
from warmup.core.lanes.plan import plan_volume
from warmup.core.lanes.schedule import RampStep, Schedule, Window


def _schedule(window: Window | None = None, after: int | None = None) -> Schedule:
    return Schedule(
        isp="gmail",
        domains=("gmail.com",),
        mx=("*.google.com",),
        window=window or Window(start=time(1), end=time(5)),
        steps=(
            RampStep(first_day=1, last_day=3, per_hour=60),
            RampStep(first_day=4, last_day=6, per_hour=120),
        ),
        after_ramp=after,
    )


@pytest.mark.parametrize(
    ("start", "end", "hours", "inside", "outside"),
    [
        (time(1), time(5), 4, [time(1), time(4, 59)], [time(5), time(0, 59), time(23)]),
        (time(22), time(2), 4, [time(23), time(0), time(1, 59)], [time(2), time(21)]),
        (time(0), time(0), 24, [time(0), time(12), time(23, 59)], []),
    ],
)
def test_window(start, end, hours, inside, outside) -> None:
    window = Window(start=start, end=end)
    assert window.hours == hours
    assert all(window.contains(t) for t in inside)
    assert not any(window.contains(t) for t in outside)


def test_rates_per_day_follow_the_steps_and_window() -> None:
    schedule = _schedule()
    assert [schedule.per_hour(d) for d in range(1, 8)] == [
        60,
        60,
        60,
        120,
        120,
        120,
        120,
    ]
    assert schedule.per_day(1) == 240
    assert _schedule(after=500).per_hour(7) == 500
    with pytest.raises(ValueError, match="start at 1"):
        schedule.per_hour(0)


def test_schedule_needs_steps() -> None:
    with pytest.raises(ValueError, match="no ramp steps"):
        Schedule(isp="x")
    with pytest.raises(ValueError, match="invalid day range"):
        RampStep(first_day=3, last_day=2, per_hour=1)
    with pytest.raises(ValueError, match="positive"):
        RampStep(first_day=1, last_day=2, per_hour=0)


def test_mx_patterns_are_shell_style_and_case_insensitive() -> None:
    schedule = _schedule()
    assert schedule.matches_mx("ALT1.aspmx.l.GOOGLE.com.")
    assert not schedule.matches_mx("google.com.evil.example")


def test_plan_finds_the_first_day_and_sums_what_was_sent() -> None:
    row = plan_volume(_schedule(), ips=2, volume=900)
    # capacity: days 1-3 480/day, day 4 960/day >= 900
    assert row.day == 4
    assert row.sent_until_then == 480 * 3 + 900
    assert row.capacity_on_day == 960


def test_plan_reports_when_the_volume_is_never_reached() -> None:
    row = plan_volume(_schedule(), ips=1, volume=10_000)
    assert row.day is None
    assert row.max_capacity == 480
    assert row.ips_needed_when_warmed == 21  # ceil(10000 / 480)


@pytest.mark.parametrize("bad", [{"ips": 0, "volume": 1}, {"ips": 1, "volume": 0}])
def test_plan_rejects_nonsense(bad) -> None:
    with pytest.raises(ValueError, match=r"need at least one IP|must be positive"):
        plan_volume(_schedule(), **bad)


@given(volume=st.integers(1, 10**7), ips=st.integers(1, 50))
def test_plan_day_is_the_first_with_enough_capacity(volume: int, ips: int) -> None:
    schedule = _schedule(after=1000)
    row = plan_volume(schedule, ips=ips, volume=volume)
    if row.day is not None:
        assert ips * schedule.per_day(row.day) >= volume
        assert all(ips * schedule.per_day(d) < volume for d in range(1, row.day))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("72h", 259200),
        ("2d", 172800),
        (30, 30),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["soon", "15", "-1h", True, None, [], -5])
def test_parse_duration_rejects(bad) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=72), "3d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration(delta, text) -> None:
    assert format_duration(delta) == text
