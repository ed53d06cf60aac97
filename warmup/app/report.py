"""What `warmup report` shows, as plain data: per lane per day, rates, limits,
events, and a summary per ISP. Rendering is an adapter's job.

Rules:

1. A day is a lane's sending day (local date of its window opening): the finished
   ones from the roll-up, plus the day the lane is on, unless already rolled up.
2. A rate is a count over the day's attempts, as the lane judged it; on a day
   with fewer than ``min_sample`` attempts the limits were not applied.
3. The limits drawn are the lane's schedule's: ``reactions.rates`` (what makes a
   lane step back or pause) and ``advance`` (what a day must stay under to move on).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from warmup.app.store_rows import LaneDayRow, LaneEventRow
from warmup.core.auth.dmarc import AuthDay
from warmup.core.lanes.health import lane_problem
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.reputation import PostmasterDay, SNDSRow
from warmup.core.lanes.schedule import Advance, Rates, Schedule
from warmup.core.recipients.address import mask_addresses
from warmup.core.recipients.routing import schedule_for

__all__ = [
    "COUNTS",
    "DayRow",
    "EventRow",
    "ISPSummary",
    "LaneReport",
    "Limit",
    "Report",
    "ReportSource",
    "Span",
    "build_report",
    "gather_report",
    "limits_of",
    "report_end",
    "state_spans",
]

COUNTS = ("attempted", "delivered", "soft", "hard", "throttle", "block", "complaints")


class ReportSource(Protocol):
    """What the report reads (SQLStore has these)."""

    async def lane_history(self) -> list[LaneDayRow]: ...

    async def all_events(self) -> list[LaneEventRow]: ...

    async def all_lanes(self) -> list[tuple[int, Lane, float]]: ...

    async def auth_days(
        self, ips: Sequence[str] | None = None, since: date | None = None
    ) -> list[AuthDay]: ...

    async def reputation_days(
        self, since: date | None = None
    ) -> tuple[list[PostmasterDay], list[SNDSRow]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DayRow:
    """One lane's sending day."""

    ip: str
    isp: str
    day: date
    ramp_day: int
    per_hour: float  # the schedule rate of that ramp day
    planned: int
    counts: Mapping[str, int]

    @property
    def deferred(self) -> int:
        return self.counts["soft"] + self.counts["throttle"]

    def rate(self, name: str) -> float | None:
        """``name`` over the day's attempts; None on a day without attempts."""
        attempted = self.counts["attempted"]
        count = self.deferred if name == "deferred" else self.counts[name]
        return count / attempted if attempted else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """A lane event; ``at`` in the report's time zone."""

    ip: str
    isp: str
    at: datetime
    cause: str
    old_state: str
    new_state: str
    detail: str
    reply: str

    @property
    def pauses(self) -> bool:
        return self.new_state == "paused" and self.old_state != "paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """A rate limit of a schedule, for one rate ("hard", "deferred", "complaints")."""

    rate_name: str
    value: float
    effect: str  # "steps back", "pauses", "blocks the advance"


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneReport:
    ip: str
    isp: str
    state: str
    ramp_day: int
    last_ramp_day: int
    allowance_per_hour: float
    min_sample: int
    days: tuple[DayRow, ...]
    events: tuple[EventRow, ...]
    limits: tuple[Limit, ...]
    # Why it needs a look (core.lanes.health, as status and the metrics judge it).
    problem: str | None = None

    @property
    def key(self) -> str:
        """A stable identifier, safe in HTML ids: ``127-0-0-2-gmail``."""
        return re.sub(r"[^A-Za-z0-9_-]", "-", f"{self.ip}-{self.isp}")

    def total(self, name: str) -> int:
        return sum(day.counts[name] for day in self.days)


@dataclass(frozen=True, slots=True, kw_only=True)
class ISPSummary:
    isp: str
    lanes: int
    states: Mapping[str, int]
    ramp_days: tuple[int, int]  # lowest and highest ramp day of its lanes
    last_ramp_day: int
    planned: int
    counts: Mapping[str, int]
    throttle_events: int
    pauses: int
    step_backs: int
    limits: tuple[Limit, ...]
    problems: Mapping[str, int] = field(default_factory=dict)  # lanes per problem

    def rate(self, name: str) -> float | None:
        attempted = self.counts["attempted"]
        if name == "deferred":
            count = self.counts["soft"] + self.counts["throttle"]
        else:
            count = self.counts[name]
        return count / attempted if attempted else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    generated_at: datetime  # in the report's time zone
    timezone: str
    lanes: tuple[LaneReport, ...]
    isps: tuple[ISPSummary, ...]
    first_day: date | None
    last_day: date | None
    counts: Mapping[str, int] = field(default_factory=dict)
    planned: int = 0
    # DMARC aggregate report figures per source IP x day, and the pass rate
    # under which an IP's ramps hold (core.auth.dmarc).
    auth: tuple[AuthDay, ...] = ()
    auth_min_pass_rate: float = 0.98
    # The ISPs' own figures (app.reputation), every stored day.
    postmaster: tuple[PostmasterDay, ...] = ()
    snds: tuple[SNDSRow, ...] = ()

    @property
    def events(self) -> tuple[EventRow, ...]:
        return tuple(
            sorted((e for lane in self.lanes for e in lane.events), key=_event_order)
        )


def _event_order(event: EventRow) -> tuple[datetime, str, str]:
    return event.at, event.ip, event.isp


def limits_of(schedule: Schedule | None) -> tuple[Limit, ...]:
    """The rate limits of a schedule, as drawn (rule 3)."""
    rates = schedule.reactions.rates if schedule else Rates()
    advance = schedule.advance if schedule else Advance()
    return (
        Limit(rate_name="hard", value=rates.hard_bounce_rate, effect="steps back"),
        Limit(
            rate_name="hard",
            value=advance.max_hard_bounce_rate,
            effect="blocks the advance",
        ),
        Limit(
            rate_name="deferred",
            value=advance.max_deferral_rate,
            effect="blocks the advance",
        ),
        Limit(rate_name="complaints", value=rates.complaint_rate, effect="pauses"),
        Limit(
            rate_name="complaints",
            value=advance.max_complaint_rate,
            effect="blocks the advance",
        ),
    )


def _day_from_row(row: Mapping[str, Any]) -> DayRow:
    return DayRow(
        ip=str(row["ip"]),
        isp=str(row["isp"]),
        day=row["day"],
        ramp_day=int(row["ramp_day"]),
        per_hour=float(row["allowance_per_hour"]),
        planned=int(row["planned"]),
        counts={name: int(row[name]) for name in COUNTS},
    )


def _schedule(isp: str, schedules: Mapping[str, Schedule]) -> Schedule | None:
    """The lane's schedule (core.recipients.routing.schedule_for); None when the
    schedules
    given know neither its ISP nor a default (a report shows the lane anyway)."""
    try:
        return schedule_for(isp, schedules)
    except KeyError:
        return None


def _current_day(lane: Lane, schedule: Schedule | None) -> DayRow | None:
    """The day the lane is on, from its counters (rule 1)."""
    if lane.day is None or not lane.stats.attempted:
        return None
    stats = lane.stats
    return DayRow(
        ip=lane.ip,
        isp=lane.isp,
        day=lane.day,
        ramp_day=lane.ramp_day,
        per_hour=float(schedule.per_hour(lane.ramp_day)) if schedule else 0.0,
        planned=schedule.per_day(lane.ramp_day) if schedule else 0,
        counts={name: int(getattr(stats, name)) for name in COUNTS},
    )


def _event_from_row(row: Mapping[str, Any], tz: tzinfo) -> EventRow:
    at: datetime = row["at"]
    return EventRow(
        ip=str(row["ip"]),
        isp=str(row["isp"]),
        at=at.astimezone(tz),
        cause=str(row["cause"]),
        old_state=str(row["old_state"] or ""),
        new_state=str(row["new_state"] or ""),
        detail=str(row["detail"] or ""),
        reply=mask_addresses(str(row["reply"] or "")),
    )


def _problem(lane: Lane, schedule: Schedule | None, now: datetime) -> str | None:
    problem = lane_problem(lane, schedule, now)
    return None if problem is None else problem.value


def build_report(
    *,
    history: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    lanes: Sequence[tuple[int, Lane, float]],
    schedules: Mapping[str, Schedule],
    tz: tzinfo,
    now: datetime,
    auth: Sequence[AuthDay] = (),
    auth_min_pass_rate: float = 0.98,
    reputation: tuple[Sequence[PostmasterDay], Sequence[SNDSRow]] = ((), ()),
) -> Report:
    """Shape the store's rows into a :class:`Report` (pure)."""
    days: dict[tuple[str, str], list[DayRow]] = {}
    for row in history:
        day = _day_from_row(row)
        days.setdefault((day.ip, day.isp), []).append(day)
    by_lane: dict[tuple[str, str], list[EventRow]] = {}
    for row in events:
        event = _event_from_row(row, tz)
        by_lane.setdefault((event.ip, event.isp), []).append(event)
    reports = []
    for _, lane, allowance in sorted(lanes, key=lambda t: (t[1].isp, t[1].ip)):
        schedule = _schedule(lane.isp, schedules)
        lane_days = days.get((lane.ip, lane.isp), [])
        current = _current_day(lane, schedule)
        if current is not None:
            # A row for the lane's current day was written at a shutdown, and the
            # lane counted on after the restart: its plan, the live counts.
            stored = [d for d in lane_days if d.day == current.day]
            if stored:
                current = replace(stored[0], counts=current.counts)
            lane_days = [d for d in lane_days if d.day != current.day]
            lane_days.append(current)
        reports.append(
            LaneReport(
                ip=lane.ip,
                isp=lane.isp,
                state=lane.state.value,
                ramp_day=lane.ramp_day,
                last_ramp_day=schedule.last_day if schedule else lane.ramp_day,
                allowance_per_hour=allowance,
                min_sample=(
                    schedule.reactions.rates if schedule else Rates()
                ).min_sample,
                days=tuple(sorted(lane_days, key=lambda d: d.day)),
                events=tuple(
                    sorted(by_lane.get((lane.ip, lane.isp), []), key=_event_order)
                ),
                limits=limits_of(schedule),
                problem=_problem(lane, schedule, now),
            )
        )
    return replace(
        _assemble(reports, tz, now),
        auth=tuple(sorted(auth, key=lambda a: (a.ip, a.day))),
        auth_min_pass_rate=auth_min_pass_rate,
        postmaster=tuple(reputation[0]),
        snds=tuple(reputation[1]),
    )


def _assemble(lanes: list[LaneReport], tz: tzinfo, now: datetime) -> Report:
    all_days = [day.day for lane in lanes for day in lane.days]
    return Report(
        generated_at=now.astimezone(tz),
        timezone=str(tz),
        lanes=tuple(lanes),
        isps=tuple(_summarize_isps(lanes)),
        first_day=min(all_days, default=None),
        last_day=max(all_days, default=None),
        counts={name: sum(lane.total(name) for lane in lanes) for name in COUNTS},
        planned=sum(day.planned for lane in lanes for day in lane.days),
    )


def _summarize_isps(lanes: Iterable[LaneReport]) -> list[ISPSummary]:
    """One summary per ISP over its lanes, by ISP name."""
    grouped: dict[str, list[LaneReport]] = {}
    for lane in lanes:
        grouped.setdefault(lane.isp, []).append(lane)
    summaries = []
    for isp, members in sorted(grouped.items()):
        events = [e for lane in members for e in lane.events]
        ramp_days = [lane.ramp_day for lane in members]
        summaries.append(
            ISPSummary(
                isp=isp,
                lanes=len(members),
                states=dict(Counter(lane.state for lane in members)),
                ramp_days=(min(ramp_days), max(ramp_days)),
                last_ramp_day=max(lane.last_ramp_day for lane in members),
                planned=sum(d.planned for lane in members for d in lane.days),
                counts={n: sum(lane.total(n) for lane in members) for n in COUNTS},
                throttle_events=sum(e.cause == "throttle" for e in events),
                pauses=sum(e.pauses for e in events),
                step_backs=sum(e.cause == "step_back" for e in events),
                limits=members[0].limits,
                problems=dict(
                    Counter(lane.problem for lane in members if lane.problem)
                ),
            )
        )
    return summaries


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A stretch of time a lane spent in one state."""

    state: str
    start: datetime
    end: datetime


def state_spans(lane: LaneReport, *, start: datetime, end: datetime) -> list[Span]:
    """The lane's states between ``start`` and ``end``, from its events.

    Before its first event the lane was in that event's old state (or, without
    events, in its current state).
    """
    first = lane.days[0].day if lane.days else None
    if first is not None:
        start = max(start, datetime.combine(first, time(0), tzinfo=start.tzinfo))
    state = lane.events[0].old_state if lane.events else lane.state
    spans: list[Span] = []
    for event in lane.events:
        if event.new_state == state:
            continue
        if event.at > start:
            spans.append(Span(state=state, start=start, end=event.at))
            start = event.at
        state = event.new_state
    if end > start:
        spans.append(Span(state=state, start=start, end=end))
    return spans


def report_end(report: Report) -> datetime:
    """Where the report's time axis ends: after its last day and last event."""
    tz = report.generated_at.tzinfo
    ends = [e.at for e in report.events]
    if report.last_day is not None:
        next_day = report.last_day + timedelta(days=1)
        ends.append(datetime.combine(next_day, time(0), tzinfo=tz))
    return max(ends, default=report.generated_at)


async def gather_report(
    source: ReportSource,
    *,
    schedules: Mapping[str, Schedule],
    tz: tzinfo,
    now: datetime,
    auth_min_pass_rate: float = 0.98,
) -> Report:
    """Read what the report needs from the store and shape it."""
    return build_report(
        history=await source.lane_history(),
        events=await source.all_events(),
        lanes=await source.all_lanes(),
        schedules=schedules,
        tz=tz,
        now=now,
        auth=await source.auth_days(),
        auth_min_pass_rate=auth_min_pass_rate,
        reputation=await source.reputation_days(),
    )
