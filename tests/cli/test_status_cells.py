"""`warmup status` says in the table what --json says: a closed window and when
it opens, a pause and who made it."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from warmup.cli.status_cmd import lane_record
from warmup.cli.status_view import state_cell as _state_cell
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.model import LaneState

TZ = ZoneInfo("Asia/Tokyo")
SCHEDULE = Schedule(
    isp="gmail",
    window=Window(start=time(1), end=time(5)),
    steps=(RampStep(first_day=1, last_day=3, per_hour=60),),
)
EVENING = datetime(2030, 1, 1, 20, tzinfo=TZ).astimezone(UTC)


def _record(lane: Lane, now: datetime) -> dict[str, object]:
    return lane_record(lane, 60.0, SCHEDULE, None, now=now, tz=TZ)


def test_a_closed_window_says_when_it_opens() -> None:
    record = _record(Lane(ip="10.0.0.1", isp="gmail"), EVENING)
    assert record["opens_at"] == datetime(2030, 1, 2, 1, tzinfo=TZ)
    assert _state_cell(record, TZ, EVENING) == (
        "ramping, closed, opens 01:00 Asia/Tokyo, in 5 h"
    )


def test_an_open_window_is_just_the_state() -> None:
    night = datetime(2030, 1, 2, 2, tzinfo=TZ).astimezone(UTC)
    record = _record(Lane(ip="10.0.0.1", isp="gmail"), night)
    assert record["opens_at"] is None
    assert _state_cell(record, TZ, night) == "ramping"


def test_a_pause_says_who_and_until_when() -> None:
    until = datetime(2030, 1, 2, 9, 30, tzinfo=TZ)
    operator = Lane(ip="10.0.0.1", isp="gmail", state=LaneState.paused, operator=True)
    assert _state_cell(_record(operator, EVENING), TZ, EVENING) == (
        "paused by operator until resumed"
    )
    blocked = Lane(
        ip="10.0.0.1", isp="gmail", state=LaneState.paused, paused_until=until
    )
    assert _state_cell(_record(blocked, EVENING), TZ, EVENING) == (
        "paused until 01-02 09:30"
    )
