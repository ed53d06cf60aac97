"""The lane state machine: ramp day, allowance, backoff and pauses of one (IP, ISP).

Rules (every change is returned as a :class:`LaneEvent` with its cause):

1. Allowance. A lane's rate is ``schedule.per_hour(ramp_day) * factor``; ``factor``
   is 1 except while backed off. A ``warmed`` lane uses the schedule's warmed rate.
2. Throttle (e.g. 421 4.7.28). At once: ``factor *= throttle.factor``, state
   ``backed_off``, held until ``now + hold``. Each further throttle in the same
   window cuts again; the ``pause_after``-th pauses the lane (rule 4).
3. Recovery. Once the hold has passed, every ``recover_every`` without a throttle
   adds ``recover_step`` to the factor, never above 1; at 1 the lane is back to
   ``ramping`` (or ``warmed``).
4. Block (5xx aimed at the sender) pauses the lane until ``pause_for`` has passed
   (None: until its next window opens). A paused lane sends nothing, and replies
   to sends still in flight only count; when the pause ends it resumes backed off
   at ``throttle.factor``. A block saying the mail is unauthenticated (Gmail
   5.7.26/5.7.27, Microsoft 5.7.515, any ``authfailure``) pauses the same way with
   cause ``authentication``, its event telling to run ``warmup doctor``.
5. Day close. At the first window of a new day the previous day is judged: it
   advances the ramp day when it met ``advance`` (enough volume, hard-bounce,
   deferral and complaint rates under the limits), else the day is repeated. A lane
   idle for ``idle_reset`` starts again at day 1. Past the last step the lane is
   ``warmed``. While a :class:`RampHold` stands, a day that met ``advance`` is
   repeated all the same, with the hold's event: ``auth_failing`` while the IP's
   DMARC reports say its authentication fails (:mod:`warmup.core.auth.dmarc`),
   ``reputation_hold`` while the ISP's own data on the IP is poor
   (:mod:`warmup.core.lanes.reputation`).
6. Late reports. A bounce or complaint that arrives after the 250 counts on the day it
   arrives: a failure replaces one delivery of that day (the attempt is not counted
   twice; with no delivery yet it counts as an attempt), a complaint adds to the
   complaints; throttles and blocks react as in 2 and 4.
7. Rolling rates. After every counted reply or late report the lane's last
   ``rates.window`` (24 h) is judged (:func:`judge_window`) once it holds at least
   ``rates.min_sample`` attempts: a complaint rate over ``rates.complaint_rate``
   pauses the lane (for ``block.pause_for``, else a day); else a hard-bounce rate
   over ``rates.hard_bounce_rate`` steps the ramp back one step. The caller then
   starts a fresh window, so one bad window reacts once.
8. Operator. ``operator_pause`` pauses the lane until ``until`` (None: until an
   operator resumes it); the lane keeps its rate and factor, and no reply or
   rate reaction changes an operator pause. ``operator_resume`` lifts any pause
   (an automatic one too) back to the lane's rate before it, backed off if its
   factor was cut. Both are lane events even when nothing changes, so each act
   is on record. An operator pause that reaches ``until`` ends the same way.
9. Reputation. The ISP's own data saying stop (:func:`reputation_pause`) pauses
   the lane for ``until`` with cause ``reputation`` and the figure; it never
   shortens a longer pause and never touches an operator pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta

from warmup.core.auth.dmarc import AuthDay
from warmup.core.lanes.schedule import Advance, Rates, Schedule
from warmup.core.model import LaneCause, LaneState, Verdict

__all__ = [
    "AUTH_CODES",
    "AUTH_HINT",
    "DayStats",
    "Lane",
    "LaneEvent",
    "RampHold",
    "WindowCounts",
    "auth_hold",
    "close_day",
    "is_unauthenticated",
    "judge_window",
    "lane_rate",
    "new_lane",
    "on_late_verdict",
    "on_reply",
    "operator_pause",
    "operator_resume",
    "ramp_hold_event",
    "rates_over",
    "reputation_pause",
    "resume",
    "with_last_sent",
]


#: The reply reason (core.replies.classify) of a block for missing SPF/DKIM/DMARC.


_NOT_SOFT = frozenset(
    {Verdict.delivered, Verdict.hard, Verdict.throttle, Verdict.block, Verdict.feedback}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DayStats:
    """What a lane did during one sending day."""

    attempted: int = 0
    delivered: int = 0
    soft: int = 0
    hard: int = 0
    throttle: int = 0
    block: int = 0
    complaints: int = 0

    def rate(self, count: int) -> float:
        return count / self.attempted if self.attempted else 0.0

    def add(self, verdict: Verdict) -> DayStats:
        # Built directly, not by dataclasses.replace: once per send (issue 16).
        return DayStats(
            attempted=self.attempted + (verdict is not Verdict.feedback),
            delivered=self.delivered + (verdict is Verdict.delivered),
            soft=self.soft + (verdict not in _NOT_SOFT),
            hard=self.hard + (verdict is Verdict.hard),
            throttle=self.throttle + (verdict is Verdict.throttle),
            block=self.block + (verdict is Verdict.block),
            complaints=self.complaints + (verdict is Verdict.feedback),
        )

    def late(self, verdict: Verdict) -> DayStats:
        """A send counted as delivered turned out to fail (or drew a complaint)."""
        if verdict in (Verdict.delivered, Verdict.autoreply):
            return self
        counted = self.add(verdict)
        if verdict is Verdict.feedback or not self.delivered:
            return counted  # no delivery today to replace: a new attempt
        return replace(counted, attempted=self.attempted, delivered=self.delivered - 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowCounts:
    """What a lane did over its last ``rates.window`` (see core.lanes.rolling)."""

    attempted: int = 0
    hard: int = 0
    complaints: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Lane:
    ip: str
    isp: str
    state: LaneState = LaneState.ramping
    ramp_day: int = 1
    factor: float = 1.0
    hold_until: datetime | None = None
    recover_at: datetime | None = None
    paused_until: datetime | None = None
    # The window instance (its opening) the throttle count belongs to.
    throttles: int = 0
    day: date | None = None
    stats: DayStats = field(default_factory=DayStats)
    last_sent_at: datetime | None = None
    # Rule 8: paused by an operator (not by a reaction), and the newest operator
    # control (warmup.core.lanes.control) this lane has applied.
    operator: bool = False
    control_seen: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {self.factor!r}")
        if self.ramp_day < 1:
            raise ValueError(f"ramp_day starts at 1, got {self.ramp_day!r}")


_LANE_FIELDS = tuple(f.name for f in fields(Lane))


def _with(lane: Lane, name: str, value: object) -> Lane:
    """``replace(lane, name=value)`` without ``__init__`` and its checks, for the
    two per-send changes that cannot break them (the day's counts, the last
    send): ~2.5x cheaper than dataclasses.replace (issue 16)."""
    new = object.__new__(Lane)
    for each in _LANE_FIELDS:
        object.__setattr__(new, each, getattr(lane, each))
    object.__setattr__(new, name, value)
    return new


def with_last_sent(lane: Lane, at: datetime) -> Lane:
    """The lane after a send at ``at`` (its pacing slot)."""
    return _with(lane, "last_sent_at", at)


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneEvent:
    at: datetime
    cause: LaneCause
    old_state: LaneState
    new_state: LaneState
    detail: str = ""
    reply: str = ""


def new_lane(ip: str, isp: str, *, warmed: bool = False, schedule: Schedule) -> Lane:
    """A lane on day 1, or an overflow lane already warmed for its ISP."""
    if warmed:
        return Lane(
            ip=ip, isp=isp, state=LaneState.warmed, ramp_day=schedule.last_day + 1
        )
    return Lane(ip=ip, isp=isp)


def _base_state(lane: Lane, schedule: Schedule) -> LaneState:
    return LaneState.warmed if lane.ramp_day > schedule.last_day else LaneState.ramping


def lane_rate(lane: Lane, schedule: Schedule) -> float:
    """Messages per hour the lane may send now (0 when paused)."""
    if lane.state is LaneState.paused:
        return 0.0
    return schedule.per_hour(lane.ramp_day) * lane.factor


def _event(
    lane: Lane, new: Lane, now: datetime, cause: LaneCause, detail: str, reply: str = ""
) -> LaneEvent:
    return LaneEvent(
        at=now,
        cause=cause,
        old_state=lane.state,
        new_state=new.state,
        detail=detail,
        reply=reply,
    )


def on_reply(
    lane: Lane,
    verdict: Verdict,
    *,
    now: datetime,
    schedule: Schedule,
    next_window: datetime,
    reply: str = "",
    reason: str = "",
    enhanced: str | None = None,
) -> tuple[Lane, list[LaneEvent]]:
    """Count the reply and react to throttles and blocks (rules 2 and 4); a block
    for missing authentication pauses with cause ``authentication``."""
    counted = _with(lane, "stats", lane.stats.add(verdict))
    auth = verdict is Verdict.block and is_unauthenticated(reason, enhanced)
    return _react(counted, verdict, now, schedule, next_window, reply, auth=auth)


#: Replies that mean "your mail is not authenticated": Gmail's 5.7.26 and 5.7.27,
#: Microsoft's 5.7.515, and whatever the reply rules call ``authfailure``.
AUTH_CODES = frozenset({"5.7.26", "5.7.27", "5.7.515"})
AUTH_HINT = "the receiver says the mail is not authenticated: run `warmup doctor`"


def is_unauthenticated(reason: str, enhanced: str | None) -> bool:
    return reason == "authfailure" or enhanced in AUTH_CODES


def on_late_verdict(
    lane: Lane,
    verdict: Verdict,
    *,
    now: datetime,
    schedule: Schedule,
    next_window: datetime,
    reply: str = "",
) -> tuple[Lane, list[LaneEvent]]:
    """A bounce or complaint that arrived after the send (rule 6): the day counts
    it in place of a delivery, and throttles and blocks react as in :func:`on_reply`.
    """
    counted = replace(lane, stats=lane.stats.late(verdict))
    return _react(counted, verdict, now, schedule, next_window, reply)


def _react(
    lane: Lane,
    verdict: Verdict,
    now: datetime,
    schedule: Schedule,
    next_window: datetime,
    reply: str,
    *,
    auth: bool = False,
) -> tuple[Lane, list[LaneEvent]]:
    if lane.state is LaneState.paused:
        return lane, []  # a late reply from a send in flight: already paused
    if verdict is Verdict.throttle:
        return _throttle(lane, now, schedule, next_window, reply)
    if verdict is Verdict.block:
        until = _pause_end(schedule.reactions.block.pause_for, now, next_window)
        if auth:
            return _pause(
                lane, now, until, LaneCause.authentication, reply, note=AUTH_HINT
            )
        return _pause(lane, now, until, LaneCause.block, reply)
    return lane, []


def _pause_end(
    pause_for: timedelta | None, now: datetime, next_window: datetime
) -> datetime:
    return next_window if pause_for is None else now + pause_for


def _pause(
    lane: Lane,
    now: datetime,
    until: datetime,
    cause: LaneCause,
    reply: str,
    *,
    note: str = "",
) -> tuple[Lane, list[LaneEvent]]:
    paused = replace(
        lane,
        state=LaneState.paused,
        paused_until=until,
        hold_until=None,
        recover_at=None,
        operator=False,
    )
    return paused, [
        _event(
            lane,
            paused,
            now,
            cause,
            f"paused until {until.isoformat()}" + (f"; {note}" if note else ""),
            reply,
        )
    ]


def _throttle(
    lane: Lane, now: datetime, schedule: Schedule, next_window: datetime, reply: str
) -> tuple[Lane, list[LaneEvent]]:
    rule = schedule.reactions.throttle
    count = lane.throttles + 1
    if count >= rule.pause_after:
        until = _pause_end(rule.pause_for, now, next_window)
        return _pause(
            replace(lane, throttles=count), now, until, LaneCause.throttle, reply
        )
    factor = max(lane.factor * rule.factor, 0.01)
    hold = now + rule.hold
    cut = replace(
        lane,
        state=LaneState.backed_off,
        factor=factor,
        hold_until=hold,
        recover_at=hold,
        throttles=count,
    )
    detail = f"allowance x{factor:.2f} held until {hold.isoformat()}"
    return cut, [_event(lane, cut, now, LaneCause.throttle, detail, reply)]


def resume(
    lane: Lane, *, now: datetime, schedule: Schedule
) -> tuple[Lane, list[LaneEvent]]:
    """Time-driven changes: a pause that ended, a recovery step that is due (rule 3)."""
    if lane.state is LaneState.paused:
        if lane.operator:
            if lane.paused_until is None or now < lane.paused_until:
                return lane, []
            return operator_resume(
                lane, now=now, schedule=schedule, detail="operator pause ended"
            )
        if lane.paused_until is not None and now < lane.paused_until:
            return lane, []
        rule = schedule.reactions.throttle
        back = replace(
            lane,
            state=LaneState.backed_off,
            factor=rule.factor,
            paused_until=None,
            hold_until=now,
            recover_at=now + rule.recover_every,
            throttles=0,
        )
        return back, [
            _event(lane, back, now, LaneCause.resume, f"allowance x{rule.factor:.2f}")
        ]
    if (
        lane.state is not LaneState.backed_off
        or lane.recover_at is None
        or now < lane.recover_at
    ):
        return lane, []
    rule = schedule.reactions.throttle
    factor = min(1.0, lane.factor + rule.recover_step)
    if factor >= 1.0:
        done = replace(
            lane,
            state=_base_state(lane, schedule),
            factor=1.0,
            hold_until=None,
            recover_at=None,
        )
        return done, [
            _event(lane, done, now, LaneCause.recovered, "allowance back to schedule")
        ]
    step = replace(lane, factor=factor, recover_at=now + rule.recover_every)
    return step, [
        _event(lane, step, now, LaneCause.recovering, f"allowance x{factor:.2f}")
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class RampHold:
    """Why a lane's ramp may not advance now (rule 5): the event's cause and the
    figure that holds it."""

    cause: LaneCause
    detail: str


def auth_hold(auth: AuthDay) -> RampHold:
    """The IP's failing DMARC day as a hold (event ``auth_failing``)."""
    return RampHold(cause=LaneCause.auth_failing, detail=auth.describe())


def ramp_hold_event(lane: Lane, hold: RampHold, now: datetime) -> LaneEvent:
    """The lane's ramp holds until the figure is clean again (rule 5)."""
    detail = f"{hold.detail}: ramp day {lane.ramp_day} held until a clean day"
    return _event(lane, lane, now, hold.cause, detail)


def reputation_pause(
    lane: Lane, *, now: datetime, until: datetime, detail: str
) -> tuple[Lane, list[LaneEvent]]:
    """Rule 9: the ISP's own data says stop (``detail``: the figure)."""
    if lane.state is LaneState.paused and (
        lane.operator or lane.paused_until is None or lane.paused_until >= until
    ):
        return lane, []
    return _pause(lane, now, until, LaneCause.reputation, "", note=detail)


def operator_pause(
    lane: Lane, *, now: datetime, until: datetime | None, detail: str
) -> tuple[Lane, list[LaneEvent]]:
    """Rule 8: pause for the operator, keeping the lane's rate for the resume.

    A lane the ISP's replies paused for longer than the operator asks stays
    under that pause (on record): the operator's end must not lift it early.
    """
    if (
        lane.state is LaneState.paused
        and not lane.operator
        and until is not None
        and lane.paused_until is not None
        and lane.paused_until >= until
    ):
        note = f"{detail}; already paused until {lane.paused_until.isoformat()}"
        return lane, [_event(lane, lane, now, LaneCause.operator_pause, note)]
    paused = replace(lane, state=LaneState.paused, paused_until=until, operator=True)
    return paused, [_event(lane, paused, now, LaneCause.operator_pause, detail)]


def operator_resume(
    lane: Lane, *, now: datetime, schedule: Schedule, detail: str
) -> tuple[Lane, list[LaneEvent]]:
    """Rule 8: lift any pause; a cut factor recovers as after a throttle."""
    if lane.state is not LaneState.paused:
        return lane, [_event(lane, lane, now, LaneCause.operator_resume, detail)]
    back = replace(lane, paused_until=None, operator=False, throttles=0)
    if back.factor < 1.0:
        rule = schedule.reactions.throttle
        back = replace(
            back,
            state=LaneState.backed_off,
            hold_until=now,
            recover_at=now + rule.recover_every,
        )
    else:
        back = replace(back, state=_base_state(back, schedule))
    return back, [_event(lane, back, now, LaneCause.operator_resume, detail)]


def close_day(
    lane: Lane,
    *,
    new_day: date,
    now: datetime,
    planned: int,
    schedule: Schedule,
    holds: Sequence[RampHold] = (),
) -> tuple[Lane, list[LaneEvent]]:
    """Judge the finished day and start ``new_day`` (rule 5); ``holds``: what
    keeps the ramp from advancing now (a failing DMARC day, poor ISP data)."""
    if lane.day is None or lane.day == new_day:
        return replace(lane, day=new_day), []
    stats, advance, limits = lane.stats, schedule.advance, schedule.reactions.rates
    fresh = replace(lane, day=new_day, stats=DayStats(), throttles=0)
    idle = (
        lane.last_sent_at is not None and now - lane.last_sent_at >= schedule.idle_reset
    )
    if idle and lane.ramp_day > 1:
        state = LaneState.paused if lane.operator else LaneState.ramping
        reset = replace(fresh, ramp_day=1, state=state, factor=1.0)
        return reset, [
            _event(lane, reset, now, LaneCause.idle_reset, "back to ramp day 1")
        ]
    if holds and _met(stats, planned, advance, limits):
        return fresh, [ramp_hold_event(fresh, hold, now) for hold in holds]
    if _met(stats, planned, advance, limits):
        ahead = replace(fresh, ramp_day=lane.ramp_day + 1)
        ahead = replace(ahead, state=_state_after_day(ahead, schedule))
        return ahead, [
            _event(lane, ahead, now, LaneCause.advance, f"ramp day {ahead.ramp_day}")
        ]
    detail = f"ramp day {lane.ramp_day} repeated ({stats.attempted}/{planned} sent)"
    return fresh, [_event(lane, fresh, now, LaneCause.repeat, detail)]


def judge_window(
    lane: Lane, counts: WindowCounts, *, now: datetime, schedule: Schedule
) -> tuple[Lane, list[LaneEvent]]:
    """The rolling-rate reactions (rule 7) on the lane's last ``rates.window``."""
    limits = schedule.reactions.rates
    if counts.attempted < limits.min_sample or lane.state is LaneState.paused:
        return lane, []
    complaint_rate = counts.complaints / counts.attempted
    if complaint_rate > limits.complaint_rate:
        pause_for = schedule.reactions.block.pause_for or timedelta(days=1)
        detail = (
            f"complaint rate {complaint_rate:.2%} over the last "
            f"{counts.attempted} attempts"
        )
        return _pause(lane, now, now + pause_for, LaneCause.complaint_rate, detail)
    hard_rate = counts.hard / counts.attempted
    if hard_rate > limits.hard_bounce_rate:
        back = replace(lane, ramp_day=_previous_step(lane.ramp_day, schedule))
        back = replace(back, state=_state_after_day(back, schedule))
        detail = (
            f"hard-bounce rate {hard_rate:.2%} over the last {counts.attempted} "
            f"attempts: day {back.ramp_day}"
        )
        return back, [_event(lane, back, now, LaneCause.step_back, detail)]
    return lane, []


def _state_after_day(lane: Lane, schedule: Schedule) -> LaneState:
    if lane.state in (LaneState.paused, LaneState.backed_off):
        return lane.state
    return _base_state(lane, schedule)


def rates_over(stats: DayStats, advance: Advance, limits: Rates) -> list[str]:
    """The day's rates over the limits that keep it from advancing ("hard",
    "deferred", "complaints"); none on fewer than ``min_sample`` attempts, too
    few for a rate to mean anything. Also what makes a lane ``high_rates``
    (:mod:`warmup.core.lanes.health`)."""
    if stats.attempted < limits.min_sample:
        return []
    over = [
        ("hard", stats.rate(stats.hard) > advance.max_hard_bounce_rate),
        (
            "deferred",
            stats.rate(stats.soft + stats.throttle) > advance.max_deferral_rate,
        ),
        ("complaints", stats.rate(stats.complaints) > advance.max_complaint_rate),
    ]
    return [name for name, is_over in over if is_over]


def _met(stats: DayStats, planned: int, advance: Advance, limits: Rates) -> bool:
    """Enough volume, and (on a large enough sample) rates under the limits."""
    if planned <= 0 or stats.attempted < advance.min_volume_ratio * planned:
        return False
    return not rates_over(stats, advance, limits)


def _previous_step(day: int, schedule: Schedule) -> int:
    """First day of the step before the one holding ``day`` (1 at the bottom)."""
    for index, step in enumerate(schedule.steps):
        if step.first_day <= day <= step.last_day:
            return schedule.steps[index - 1].first_day if index else 1
    return schedule.steps[-1].first_day
