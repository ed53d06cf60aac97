"""Operator controls (core.lanes.control) and lane rule 8 (core.lanes.lane)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from warmup.core.lanes.control import (
    Control,
    ControlAction,
    apply_controls,
    describe_control,
    parse_when,
)
from warmup.core.lanes.lane import (
    Lane,
    close_day,
    lane_rate,
    on_reply,
    operator_pause,
    operator_resume,
    resume,
)
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.model import LaneState, Verdict

NOW = datetime(2030, 1, 1, 1, tzinfo=UTC)
SCHEDULE = Schedule(
    isp="gmail",
    steps=(
        RampStep(first_day=1, last_day=3, per_hour=60),
        RampStep(first_day=4, last_day=6, per_hour=120),
    ),
)
LANE = Lane(ip="10.0.0.1", isp="gmail")


def _control(
    id_: int, action: ControlAction = ControlAction.pause, **kw: object
) -> Control:
    fields: dict[str, object] = {"ip": None, "isp": "gmail"} | kw
    return Control(id=id_, action=action, at=NOW, actor="ops@host", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ip", "isp", "matches"),
    [
        ("10.0.0.1", "gmail", True),
        (None, "gmail", True),
        ("10.0.0.1", None, True),
        ("10.0.0.2", None, False),
        (None, "yahoo", False),
        ("10.0.0.1", "yahoo", False),
    ],
)
def test_a_control_matches_its_ip_and_isp(
    ip: str | None, isp: str | None, matches: bool
) -> None:
    assert _control(1, ip=ip, isp=isp).matches(LANE) is matches


def test_a_lane_control_names_an_ip_or_an_isp() -> None:
    with pytest.raises(ValueError, match="names an IP"):
        _control(1, isp=None)
    campaign = Control(
        id=1, action=ControlAction.cancel, at=NOW, actor="a", campaign="c"
    )
    assert not campaign.matches(LANE)


def test_pause_keeps_the_rate_for_the_resume_and_records_who_and_why() -> None:
    backed = replace(LANE, state=LaneState.backed_off, factor=0.5)
    until = NOW + timedelta(hours=2)
    control = _control(3, until=until, reason="incident 7")
    paused, events = apply_controls(backed, [control], now=NOW, schedule=SCHEDULE)
    assert paused.state is LaneState.paused and paused.operator
    assert paused.paused_until == until and paused.factor == 0.5
    assert paused.control_seen == 3
    assert lane_rate(paused, SCHEDULE) == 0
    assert [e.cause for e in events] == ["operator_pause"]
    assert events[0].detail == (
        f"paused by ops@host, until {until.isoformat()}, reason: incident 7"
    )
    back, events = apply_controls(
        paused, [_control(4, ControlAction.resume)], now=NOW, schedule=SCHEDULE
    )
    assert back.state is LaneState.backed_off and back.factor == 0.5
    assert back.recover_at == NOW + SCHEDULE.reactions.throttle.recover_every
    assert not back.operator and back.paused_until is None
    assert events[0].detail == "resumed by ops@host"


def test_the_newest_matching_control_decides_and_old_ones_are_not_replayed() -> None:
    controls = [
        _control(1),  # pause every IP at gmail
        _control(2, ControlAction.resume, ip="10.0.0.1"),  # but this one
        _control(3, ip="10.0.0.9"),  # another IP
    ]
    lane, events = apply_controls(LANE, controls, now=NOW, schedule=SCHEDULE)
    assert lane.state is LaneState.ramping and lane.control_seen == 3
    assert events == []  # a new lane: nothing aimed at it changed it
    paused = replace(lane, state=LaneState.paused, operator=True, control_seen=1)
    lane, events = apply_controls(paused, controls, now=NOW, schedule=SCHEDULE)
    assert lane.state is LaneState.ramping and lane.control_seen == 3
    assert [e.cause for e in events] == ["operator_resume"]
    again, events = apply_controls(lane, controls, now=NOW, schedule=SCHEDULE)
    assert again == lane and events == []


def test_a_pause_already_over_changes_nothing() -> None:
    lane, events = apply_controls(
        LANE, [_control(5, until=NOW)], now=NOW, schedule=SCHEDULE
    )
    assert lane.state is LaneState.ramping and events == []
    assert lane.control_seen == 5


def test_resume_lifts_an_automatic_pause() -> None:
    blocked = replace(
        LANE, state=LaneState.paused, paused_until=NOW + timedelta(days=1)
    )
    lane, _ = operator_resume(blocked, now=NOW, schedule=SCHEDULE, detail="x")
    assert lane.state is LaneState.ramping and lane.paused_until is None


def test_an_operator_pause_without_end_holds_through_time_replies_and_days() -> None:
    paused, _ = operator_pause(LANE, now=NOW, until=None, detail="x")
    later = NOW + timedelta(days=400)
    assert resume(paused, now=later, schedule=SCHEDULE) == (paused, [])
    blocked, events = on_reply(
        paused, Verdict.block, now=NOW, schedule=SCHEDULE, next_window=later
    )
    assert blocked.operator and events == []
    idle = replace(paused, ramp_day=5, day=NOW.date(), last_sent_at=NOW)
    closed, _ = close_day(
        idle, new_day=later.date(), now=later, planned=10, schedule=SCHEDULE
    )
    assert closed.state is LaneState.paused and closed.ramp_day == 1


def test_an_operator_pause_with_an_end_resumes_at_the_old_rate() -> None:
    until = NOW + timedelta(hours=1)
    paused, _ = operator_pause(LANE, now=NOW, until=until, detail="x")
    assert resume(paused, now=until - timedelta(seconds=1), schedule=SCHEDULE)[1] == []
    lane, events = resume(paused, now=until, schedule=SCHEDULE)
    assert lane.state is LaneState.ramping and lane.factor == 1.0
    assert [(e.cause, e.detail) for e in events] == [
        ("operator_resume", "operator pause ended")
    ]


def test_a_resume_of_a_lane_not_paused_is_still_on_record() -> None:
    lane, events = operator_resume(LANE, now=NOW, schedule=SCHEDULE, detail="d")
    assert lane == LANE
    assert [(e.old_state, e.new_state) for e in events] == [
        (LaneState.ramping, LaneState.ramping)
    ]


def test_describe_an_open_ended_pause() -> None:
    assert describe_control(_control(1)) == "paused by ops@host, until resumed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW + timedelta(hours=2)),
        ("30m", NOW + timedelta(minutes=30)),
        ("2030-01-01T12:00", datetime(2030, 1, 1, 3, tzinfo=UTC)),  # Tokyo
        ("2030-01-01T12:00+00:00", datetime(2030, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW, tz=ZoneInfo("Asia/Tokyo")) == expected


def test_parse_when_says_what_it_expected() -> None:
    with pytest.raises(ValueError, match="'tomorrow'"):
        parse_when("tomorrow", now=NOW, tz=UTC)


def test_a_short_operator_pause_does_not_cut_short_an_isps_block() -> None:
    """A lane paused for a day by a block, then paused an hour by the operator:
    the operator's hour ending must not send at full rate 23 hours before the
    ISP's pause ends; the block's own resume (at a cut rate) still happens."""
    day = NOW + timedelta(days=1)
    blocked, _ = on_reply(
        LANE, Verdict.block, now=NOW, schedule=SCHEDULE, next_window=day
    )
    assert blocked.paused_until is not None and not blocked.operator
    hour = NOW + timedelta(hours=1)
    lane, events = apply_controls(
        blocked, [_control(3, until=hour)], now=NOW, schedule=SCHEDULE
    )
    assert [e.cause for e in events] == ["operator_pause"]
    assert lane.state is LaneState.paused
    assert lane.paused_until == blocked.paused_until and not lane.operator
    assert resume(lane, now=hour, schedule=SCHEDULE) == (lane, [])
    back, events = resume(lane, now=blocked.paused_until, schedule=SCHEDULE)
    assert [e.cause for e in events] == ["resume"]
    assert back.state is LaneState.backed_off and back.factor < 1.0
    # A longer operator pause takes over, and still ends when the operator said.
    longer = NOW + timedelta(days=2)
    lane, _ = apply_controls(
        blocked, [_control(4, until=longer)], now=NOW, schedule=SCHEDULE
    )
    assert lane.operator and lane.paused_until == longer
