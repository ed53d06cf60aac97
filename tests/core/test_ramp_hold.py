"""Rule 5's holds (core.lanes.lane.RampHold: DMARC, the ISPs' reputation data) and
rule 9's reputation pause."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from warmup.core.errors import FetchError
from warmup.core.lanes.lane import (
    DayStats,
    Lane,
    RampHold,
    close_day,
    operator_pause,
    reputation_pause,
)
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.model import LaneCause, LaneState
from warmup.core.settings import PostmasterSettings, ReputationSettings, SNDSSettings

NOW = datetime(2030, 1, 2, 0, 5, tzinfo=UTC)
D1, D2 = date(2030, 1, 1), date(2030, 1, 2)
SCHEDULE = Schedule(
    isp="gmail", steps=(RampStep(first_day=1, last_day=9, per_hour=10),)
)
GOOD = DayStats(attempted=240, delivered=240)
DMARC = RampHold(cause=LaneCause.auth_failing, detail="DMARC pass 5.0% of 200 messages")
SPAM = RampHold(cause=LaneCause.reputation_hold, detail="gmail spam rate 0.15% for x")


def _close(stats: DayStats, *holds: RampHold) -> tuple[Lane, list[str], list[str]]:
    lane = Lane(ip="a", isp="gmail", ramp_day=2, day=D1, stats=stats, last_sent_at=NOW)
    closed, events = close_day(
        lane, new_day=D2, now=NOW, planned=240, schedule=SCHEDULE, holds=holds
    )
    return closed, [e.cause for e in events], [e.detail for e in events]


def test_every_hold_is_an_event_and_the_ramp_day_stays() -> None:
    closed, causes, details = _close(GOOD, DMARC, SPAM)
    assert closed.ramp_day == 2 and closed.day == D2
    assert causes == ["auth_failing", "reputation_hold"]
    assert (
        details[1] == "gmail spam rate 0.15% for x: ramp day 2 held until a clean day"
    )


def test_without_holds_the_day_advances_and_a_short_day_repeats_anyway() -> None:
    closed, causes, _ = _close(GOOD)
    assert causes == ["advance"] and closed.ramp_day == 3
    assert _close(DayStats(attempted=10, delivered=10), SPAM)[1] == ["repeat"]


def test_a_reputation_pause_carries_its_figure() -> None:
    lane, events = reputation_pause(
        Lane(ip="a", isp="gmail"), now=NOW, until=NOW + timedelta(hours=26), detail="f"
    )
    assert lane.state is LaneState.paused and not lane.operator
    assert lane.paused_until == NOW + timedelta(hours=26)
    [event] = events
    assert event.cause == "reputation" and event.detail.endswith("; f")


def test_it_never_shortens_a_pause_nor_touches_an_operator_pause() -> None:
    until = NOW + timedelta(hours=26)
    long_pause = Lane(ip="a", isp="gmail", state=LaneState.paused, paused_until=until)
    assert reputation_pause(long_pause, now=NOW, until=NOW, detail="f") == (
        long_pause,
        [],
    )
    held, _ = operator_pause(Lane(ip="a", isp="gmail"), now=NOW, until=None, detail="")
    assert reputation_pause(held, now=NOW, until=until, detail="f") == (held, [])
    short = Lane(ip="a", isp="gmail", state=LaneState.paused, paused_until=NOW)
    longer, events = reputation_pause(short, now=NOW, until=until, detail="f")
    assert longer.paused_until == until and [e.cause for e in events] == ["reputation"]


def test_reputation_settings_are_on_only_with_credentials() -> None:
    google = PostmasterSettings(credentials_file="t", domains=("shop.example",))
    assert not ReputationSettings().enabled
    assert not PostmasterSettings(credentials_file="t").enabled  # no domain
    assert ReputationSettings(google_postmaster=google).enabled
    assert ReputationSettings(snds=SNDSSettings(key_env="K")).enabled


def test_a_fetch_error_names_the_feed_and_why() -> None:
    error = FetchError("Microsoft SNDS", "HTTP 403: Access denied")
    assert isinstance(error, ConnectionError)
    assert str(error) == "could not read Microsoft SNDS: HTTP 403: Access denied"
    assert (error.source, error.detail) == ("Microsoft SNDS", "HTTP 403: Access denied")
