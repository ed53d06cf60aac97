"""One lane at run time (app/lanes.py), driven directly with instants: when it
may send, how it plans its day, how pacing advances, holds and hand-backs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from warmup.app.lanes import LaneRuntime
from warmup.core.attempt import Claimed, TickRecord
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.model import LaneState
from warmup.core.settings import SourceIP

DAY1 = datetime(2030, 1, 1, tzinfo=UTC)
WINDOW = Window(start=time(1), end=time(3))  # 01:00-03:00 UTC
SCHEDULE = Schedule(
    isp="gmail",
    window=WINDOW,
    steps=(
        RampStep(first_day=1, last_day=1, per_hour=60),
        RampStep(first_day=2, last_day=9, per_hour=120),
    ),
)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def _runtime(lane: Lane | None = None) -> LaneRuntime:
    return LaneRuntime(
        id=7,
        lane=lane or Lane(ip="127.0.0.2", isp="gmail"),
        schedule=SCHEDULE,
        source=SourceIP(address="127.0.0.2", helo="a.test"),
        tz=UTC,
    )


def _claimed(number: int) -> Claimed:
    return Claimed(
        id=number,
        campaign_id=1,
        address=f"u{number}@gmail.com",
        domain="gmail.com",
        fields={},
        attempts=0,
        queued_at=DAY1,
    )


@pytest.mark.parametrize(
    ("now", "slot", "wake"),
    [
        (DAY1, None, DAY1 + H),  # before the window: wake at its opening
        (DAY1 + H, DAY1 + H, DAY1 + H),  # at the opening: send now
        (DAY1 + 3 * H, None, DAY1 + 25 * H),  # after it: tomorrow's opening
    ],
)
def test_a_lane_sends_only_inside_its_window(
    now: datetime, slot: datetime | None, wake: datetime
) -> None:
    runtime = _runtime()
    assert runtime.due_slot(now, TickRecord()) == (slot, wake)


def test_the_first_window_plans_the_day_from_the_ramp() -> None:
    runtime = _runtime()
    record = TickRecord()
    runtime.due_slot(DAY1 + H, record)
    assert runtime.lane.day == date(2030, 1, 1)
    assert (runtime.day_rate, runtime.planned) == (60, 120)  # 60/h over 2 h
    assert runtime.claim_size(batch_size=500) == 120
    assert runtime.claim_size(batch_size=20) == 20
    assert runtime.dirty and record.days == []  # no finished day yet


def test_sends_follow_the_slot_grid_and_a_stall_restarts_it() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    runtime.sent(DAY1 + H)
    assert runtime.lane.last_sent_at == DAY1 + H
    assert runtime.next_wake(DAY1 + H) == DAY1 + H + M  # 60/h: one a minute
    slot, _ = runtime.due_slot(DAY1 + H + 90 * timedelta(seconds=1), TickRecord())
    assert slot == DAY1 + H + M  # the send due a minute after the first
    runtime.sent(DAY1 + H + 90 * timedelta(seconds=1))
    assert runtime.lane.last_sent_at == DAY1 + H + M  # on the grid, not 90 s
    runtime.sent(DAY1 + H + 10 * M)  # fell far behind: the grid restarts now
    assert runtime.lane.last_sent_at == DAY1 + H + 10 * M
    assert runtime.max_minute == 1  # sends measured when made: 90 s apart and more


def test_a_used_up_day_waits_for_the_window_to_close() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    runtime.lane = Lane(
        ip="127.0.0.2",
        isp="gmail",
        day=date(2030, 1, 1),
        stats=DayStats(attempted=120, delivered=120),
    )
    assert runtime.due_slot(DAY1 + 2 * H, TickRecord()) == (None, DAY1 + 3 * H)


def test_a_good_day_advances_the_ramp_at_the_next_window() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    stats = DayStats(attempted=120, delivered=120)
    runtime.lane = Lane(ip="127.0.0.2", isp="gmail", day=date(2030, 1, 1), stats=stats)
    record = TickRecord()
    runtime.due_slot(DAY1 + 25 * H, record)
    assert runtime.lane.ramp_day == 2 and runtime.planned == 240
    (finished,) = record.days
    assert (finished.day, finished.planned, finished.stats) == (
        date(2030, 1, 1),
        120,
        stats,
    )
    assert [event.cause for _, event in record.events] == ["advance"]


def test_a_paused_lane_waits_for_its_pause_to_end() -> None:
    until = DAY1 + H + 30 * M
    runtime = _runtime(
        Lane(ip="127.0.0.2", isp="gmail", state=LaneState.paused, paused_until=until)
    )
    assert runtime.due_slot(DAY1 + H, TickRecord()) == (None, until)


def test_an_idle_lane_is_looked_at_again_a_minute_later() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    runtime.mark_idle(DAY1 + H)
    assert runtime.due_slot(DAY1 + H, TickRecord()) == (None, DAY1 + H + M)
    runtime.buffer.append(_claimed(1))  # mail arrived: no need to wait
    assert runtime.due_slot(DAY1 + H, TickRecord())[0] == DAY1 + H


def test_unreachable_sends_hold_the_lane_from_the_third_on() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    record = TickRecord()
    for _ in range(2):
        runtime.reached(False, DAY1 + H, record)
    assert runtime.unreachable_until is None and record.events == []
    runtime.reached(False, DAY1 + H, record)
    assert runtime.unreachable_until == DAY1 + H + M
    ((lane_id, event),) = record.events
    assert (lane_id, event.cause) == (7, "unreachable")
    assert runtime.due_slot(DAY1 + H, TickRecord()) == (None, DAY1 + H + M)
    runtime.reached(True, DAY1 + H, record)  # any reply ends the hold
    assert (runtime.unreachable, runtime.unreachable_until) == (0, None)


def test_hand_back_releases_the_buffer_under_its_lease() -> None:
    runtime = _runtime()
    runtime.buffer.extend([_claimed(1), _claimed(2)])
    runtime.lease_until = DAY1 + 2 * H
    record = TickRecord()
    runtime.hand_back(record)
    assert record.released == [(1, DAY1 + 2 * H), (2, DAY1 + 2 * H)]
    assert not runtime.buffer
    runtime.hand_back(record)  # nothing left: nothing more released
    assert len(record.released) == 2


def test_a_lease_covers_the_sending_time_plus_the_margin() -> None:
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    assert runtime.lease_for(30, margin=5 * M) == 35 * M  # 30 at 60/h


def test_next_wake_without_a_send_rechecks_in_a_minute() -> None:
    assert _runtime().next_wake(DAY1) == DAY1 + M


def test_snapshot_and_day_record() -> None:
    runtime = _runtime()
    assert runtime.day_record() is None  # no day started
    runtime.due_slot(DAY1 + H, TickRecord())
    snapshot = runtime.snapshot()
    assert (snapshot.lane_id, snapshot.allowance_per_hour) == (7, 60)
    day = runtime.day_record()
    assert day is not None and (day.day, day.planned) == (date(2030, 1, 1), 120)


def _backed_off(recover_at: datetime, **changes: object) -> Lane:
    return Lane(
        ip="127.0.0.2",
        isp="gmail",
        state=LaneState.backed_off,
        factor=0.5,
        hold_until=recover_at,
        recover_at=recover_at,
        day=date(2030, 1, 1),
        **changes,  # type: ignore[arg-type]
    )


def test_a_backed_off_lane_changes_at_its_recovery_step_whatever_else_waits() -> None:
    """The lane's next change is its recovery instant (core.lanes.lane rule 3) even
    when its wake-up is later: a caller that leaves the lane alone until
    min(wake-up, next change) does not see the step late."""
    recover_at = DAY1 + H + 20 * M
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())  # plans the day: 120
    # The day's allowance used up: the lane waits for the window's end.
    runtime.lane = _backed_off(recover_at, stats=DayStats(attempted=120))
    assert runtime.due_slot(DAY1 + H + M, TickRecord()) == (None, DAY1 + 3 * H)
    assert runtime.next_change(DAY1 + H + M) == recover_at
    # Held as unreachable past the recovery, or after a send whose next slot
    # (30/h: 2 minutes on) is past it: the same.
    runtime.lane = _backed_off(recover_at)
    runtime.unreachable_until = DAY1 + 2 * H
    assert runtime.due_slot(DAY1 + H + M, TickRecord()) == (None, DAY1 + 2 * H)
    assert runtime.next_change(DAY1 + H + M) == recover_at
    runtime.unreachable_until = None
    runtime.sent(DAY1 + H + 19 * M)
    assert runtime.next_wake(DAY1 + H + 19 * M) == DAY1 + H + 21 * M
    assert runtime.next_change(DAY1 + H + 19 * M) == recover_at
    # At the instant, the step is taken; then the next window is the change.
    record = TickRecord()
    runtime.due_slot(recover_at, record)
    assert [event.cause for _, event in record.events] == ["recovering"]
    assert runtime.lane.factor == 0.75
    assert runtime.next_change(recover_at) == recover_at + H


def test_a_lane_paused_past_the_next_window_changes_when_it_opens() -> None:
    """A day closes at its next window's opening (rule 5), paused or not."""
    runtime = _runtime()
    runtime.due_slot(DAY1 + H, TickRecord())
    runtime.lane = Lane(
        ip="127.0.0.2",
        isp="gmail",
        state=LaneState.paused,
        paused_until=DAY1 + 30 * H,
        day=date(2030, 1, 1),
        stats=DayStats(attempted=10, delivered=10),
    )
    assert runtime.due_slot(DAY1 + 2 * H, TickRecord()) == (None, DAY1 + 30 * H)
    assert runtime.next_change(DAY1 + 2 * H) == DAY1 + 25 * H
    record = TickRecord()
    runtime.due_slot(DAY1 + 25 * H, record)
    assert [day.day for day in record.days] == [date(2030, 1, 1)]
    assert runtime.lane.day == date(2030, 1, 2)
    assert runtime.next_change(DAY1 + 25 * H) == DAY1 + 30 * H  # the pause's end
