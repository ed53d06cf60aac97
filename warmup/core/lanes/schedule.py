"""Per-ISP warm-up schedules: sending window, ramp steps, advance rules, reactions.

A schedule is plain data built by :mod:`warmup.config` from ``schedules/<isp>.yaml``.
Rules:

1. Ramp steps cover days 1..N contiguously; rates are positive and never decrease.
2. A lane on ramp day ``d`` may send ``per_hour(d)`` messages per hour inside the
   window; past the last step it sends ``after_ramp`` (default: the last step's rate).
3. The daily volume of a day is ``per_hour * window hours``.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from datetime import time, timedelta

__all__ = [
    "Advance",
    "BlockReaction",
    "RampStep",
    "Rates",
    "Reactions",
    "ReplyPattern",
    "Schedule",
    "ThrottleReaction",
    "Window",
]

_DAY = timedelta(days=1)


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Daily sending window in local time; ``start == end`` means all day."""

    start: time = time(0, 0)
    end: time = time(0, 0)
    # Worked out once: the pacing asks for it several times per send.
    _duration: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.all_day:
            duration = _DAY
        else:
            minutes = (_minutes(self.end) - _minutes(self.start)) % (24 * 60)
            duration = timedelta(minutes=minutes)
        object.__setattr__(self, "_duration", duration)

    @property
    def all_day(self) -> bool:
        return self.start == self.end

    @property
    def duration(self) -> timedelta:
        return self._duration

    @property
    def hours(self) -> float:
        return self.duration / timedelta(hours=1)

    def contains(self, moment: time) -> bool:
        """Whether a local wall-clock time lies inside the window (end exclusive)."""
        if self.all_day:
            return True
        now, start, end = _minutes(moment), _minutes(self.start), _minutes(self.end)
        if start < end:
            return start <= now < end
        return now >= start or now < end

    def describe(self) -> str:
        if self.all_day:
            return "all day"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RampStep:
    first_day: int
    last_day: int
    per_hour: int

    def __post_init__(self) -> None:
        if not 1 <= self.first_day <= self.last_day:
            raise ValueError(f"invalid day range {self.first_day}-{self.last_day}")
        if self.per_hour <= 0:
            raise ValueError(f"per_hour must be positive, got {self.per_hour!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Advance:
    """What a local day must have met for the lane to move to the next ramp day."""

    min_volume_ratio: float = 0.5
    max_hard_bounce_rate: float = 0.02
    max_deferral_rate: float = 0.10
    max_complaint_rate: float = 0.001


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleReaction:
    """On a throttle reply: cut the allowance, hold it, then recover stepwise."""

    factor: float = 0.5
    hold: timedelta = timedelta(hours=1)
    recover_step: float = 0.25
    recover_every: timedelta = timedelta(hours=1)
    pause_after: int = 3
    # None means "until the next window opens".
    pause_for: timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockReaction:
    """On a block reply: pause the lane for a while (None: until the next window)."""

    pause_for: timedelta | None = timedelta(hours=4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rates:
    """The rolling-rate limits of a lane (config ``rates``, schedule
    ``reactions.rates``) and what they trigger. Whether a day's deferrals hold the
    ramp is ``Advance.max_deferral_rate``'s alone."""

    window: timedelta = timedelta(hours=24)
    min_sample: int = 100
    hard_bounce_rate: float = 0.05
    complaint_rate: float = 0.003


@dataclass(frozen=True, slots=True, kw_only=True)
class Reactions:
    throttle: ThrottleReaction = field(default_factory=ThrottleReaction)
    block: BlockReaction = field(default_factory=BlockReaction)
    rates: Rates = field(default_factory=Rates)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyPattern:
    """A per-schedule override for reply classification (PowerMTA smtp-pattern-list)."""

    name: str
    regex: str
    verdict: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    isp: str
    domains: tuple[str, ...] = ()
    mx: tuple[str, ...] = ()
    window: Window = field(default_factory=Window)
    steps: tuple[RampStep, ...] = ()
    after_ramp: int | None = None
    advance: Advance = field(default_factory=Advance)
    reactions: Reactions = field(default_factory=Reactions)
    idle_reset: timedelta = timedelta(days=30)
    patterns: tuple[ReplyPattern, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"schedule {self.isp!r} has no ramp steps")

    @property
    def last_day(self) -> int:
        return self.steps[-1].last_day

    @property
    def warmed_per_hour(self) -> int:
        return (
            self.after_ramp if self.after_ramp is not None else self.steps[-1].per_hour
        )

    def per_hour(self, day: int) -> int:
        """Messages per hour per IP on ramp day ``day`` (1-based)."""
        if day < 1:
            raise ValueError(f"ramp days start at 1, got {day!r}")
        for step in self.steps:
            if step.first_day <= day <= step.last_day:
                return step.per_hour
        return self.warmed_per_hour

    def per_day(self, day: int) -> int:
        """Messages per IP on ramp day ``day``: the hourly rate over the window."""
        return math.floor(self.per_hour(day) * self.window.hours)

    def matches_domain(self, domain: str) -> bool:
        return domain.lower() in self.domains

    def matches_mx(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.mx)
