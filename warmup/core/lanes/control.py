"""Operator controls: pause and resume lanes, cancel and resume campaigns.

Controls are an append-only log (the ``controls`` table); its newest id is the
version every node watches. For a lane, the newest control that matches it and
that it has not applied yet decides (a later act overrides an earlier one, so
``pause --isp gmail`` then ``resume --ip X --isp gmail`` leaves only X/gmail
sending). Campaign acts only bump the version: the campaign row holds the state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from enum import StrEnum

from warmup.core.duration import parse_duration
from warmup.core.lanes.lane import Lane, LaneEvent, operator_pause, operator_resume
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneState

__all__ = [
    "Control",
    "ControlAction",
    "apply_controls",
    "describe_control",
    "parse_when",
]


class ControlAction(StrEnum):
    pause = "pause"
    resume = "resume"
    cancel = "cancel"  # a campaign
    resume_campaign = "resume_campaign"


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """One operator act. ``ip``/``isp`` None: every IP / every ISP."""

    id: int
    action: ControlAction
    at: datetime
    actor: str
    reason: str = ""
    ip: str | None = None
    isp: str | None = None
    until: datetime | None = None
    campaign: str | None = None

    def __post_init__(self) -> None:
        lane_act = self.action in (ControlAction.pause, ControlAction.resume)
        if lane_act and self.ip is None and self.isp is None:
            raise ValueError(f"a {self.action} names an IP, an ISP or both: {self!r}")

    def matches(self, lane: Lane) -> bool:
        if self.action not in (ControlAction.pause, ControlAction.resume):
            return False
        return self.ip in (None, lane.ip) and self.isp in (None, lane.isp)


def describe_control(control: Control) -> str:
    """Who, why and until when, as a lane event's detail says it."""
    verb = "paused" if control.action is ControlAction.pause else "resumed"
    parts = [f"{verb} by {control.actor}"]
    if control.action is ControlAction.pause:
        until = control.until.isoformat() if control.until else "resumed"
        parts.append(f"until {until}")
    if control.reason:
        parts.append(f"reason: {control.reason}")
    return ", ".join(parts)


def apply_controls(
    lane: Lane, controls: Iterable[Control], *, now: datetime, schedule: Schedule
) -> tuple[Lane, list[LaneEvent]]:
    """Apply the newest unapplied control matching ``lane`` (rule 8 of core.lanes.lane).

    ``lane.control_seen`` moves to the newest id given, matching or not. A pause
    whose ``until`` has already passed changes nothing, nor does a resume of a
    lane that is not paused and has never seen a control (a lane created later).
    """
    newest, seen = None, lane.control_seen
    for control in controls:
        if control.id <= lane.control_seen:
            continue
        seen = max(seen, control.id)
        if control.matches(lane) and (newest is None or control.id > newest.id):
            newest = control
    fresh = lane.control_seen == 0  # a lane new to the log: no act was aimed at it
    lane = replace(lane, control_seen=seen)
    if newest is None:
        return lane, []
    detail = describe_control(newest)
    if newest.action is ControlAction.resume:
        if fresh and lane.state is not LaneState.paused:
            return lane, []
        return operator_resume(lane, now=now, schedule=schedule, detail=detail)
    if newest.until is not None and newest.until <= now:
        return lane, []
    return operator_pause(lane, now=now, until=newest.until, detail=detail)


def parse_when(text: str, *, now: datetime, tz: tzinfo) -> datetime:
    """An instant as an operator writes it: a duration from now (``2h``, ``30m``)
    or an ISO 8601 date-time (``2030-01-02T08:00``, local to ``tz`` unless it
    names an offset). Raises ValueError with the offending text."""
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"expected a duration like '2h' or a date-time like "
            f"'2030-01-02T08:00', got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(now.tzinfo)
