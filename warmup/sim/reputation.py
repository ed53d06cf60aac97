"""A simulated ISP's memory of one source IP: reputation, rate, throttles, blocks.

Rules (time is always passed in; nothing here reads a clock or draws randomness):

1. Reputation is *clean volume*: +1 per message delivered, minus ``bounce_cost`` per
   unknown user or DSN bounce, times ``1 - throttle_cost`` per throttled attempt, times
   ``block_keep`` when a block is imposed. It never goes below 0.
2. The tolerated rate (messages per hour) is the least of
   ``initial + per_clean * reputation`` (volume earns trust),
   ``initial * 2 ** (active_days / doubling_days)`` (trust grows at most so fast per day
   with traffic, however large the volume) and ``max_per_hour``. An active day is a
   calendar day of ``now`` on which the IP delivered at least one message.
3. The sending rate is measured over a sliding ``window`` of attempts (throttled ones
   included). An attempt that makes the count exceed
   ``tolerated * window / 1 h + burst`` is throttled.
4. ``block_after`` throttled attempts within ``block_lookback`` impose a block for
   ``block_for``: every attempt meanwhile gets the block reply; it does not extend.
5. An IP idle longer than ``idle_grace`` loses reputation and active days with a
   half-life of ``idle_half_life`` for the time beyond the grace: ISPs forget idle IPs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

__all__ = ["Admission", "SourceReputation", "Tolerance"]

_HOUR = timedelta(hours=1)


class Admission(StrEnum):
    """The ISP's answer to one attempt from a source IP, before the mailbox's."""

    ok = "ok"
    throttled = "throttled"
    blocked = "blocked"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tolerance:
    """Parameters of the reputation model (see the module docstring)."""

    initial_per_hour: float = 80.0
    per_clean: float = 0.1
    doubling_days: float = 2.5
    max_per_hour: float = 3600.0
    window: timedelta = timedelta(minutes=10)
    burst: int = 2
    bounce_cost: float = 5.0
    throttle_cost: float = 0.005
    block_after: int = 30
    block_lookback: timedelta = _HOUR
    block_for: timedelta = timedelta(hours=4)
    block_keep: float = 0.25
    idle_grace: timedelta = timedelta(days=7)
    idle_half_life: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        positive = {
            "initial_per_hour": self.initial_per_hour,
            "doubling_days": self.doubling_days,
            "max_per_hour": self.max_per_hour,
            "window_seconds": self.window.total_seconds(),
            "block_after": self.block_after,
            "idle_half_life_seconds": self.idle_half_life.total_seconds(),
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        for name, share in (
            ("throttle_cost", self.throttle_cost),
            ("block_keep", self.block_keep),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {share!r}")

    def tolerated_per_hour(self, clean: float, active_days: float) -> float:
        """Messages per hour tolerated from an IP with this history."""
        by_volume = self.initial_per_hour + self.per_clean * clean
        by_age = self.initial_per_hour * math.pow(2.0, active_days / self.doubling_days)
        return min(by_volume, by_age, self.max_per_hour)


class SourceReputation:
    """Mutable state of one source IP at one ISP; every method takes ``now``."""

    __slots__ = (
        "_active_on",
        "_attempts",
        "_blocked_until",
        "_last_seen_at",
        "_throttles",
        "active_days",
        "clean",
        "tolerance",
    )

    def __init__(self, tolerance: Tolerance) -> None:
        self.tolerance = tolerance
        self.clean = 0.0
        self.active_days = 0.0
        self._active_on: date | None = None
        self._attempts: deque[datetime] = deque()
        self._throttles: deque[datetime] = deque()
        self._blocked_until: datetime | None = None
        self._last_seen_at: datetime | None = None

    @property
    def tolerated_per_hour(self) -> float:
        return self.tolerance.tolerated_per_hour(self.clean, self.active_days)

    def blocked_until(self, now: datetime) -> datetime | None:
        """The end of the current block, or None when not blocked at ``now``."""
        if self._blocked_until is not None and now < self._blocked_until:
            return self._blocked_until
        return None

    def admit(self, now: datetime, *, record: bool = True) -> Admission:
        """Decide one attempt. ``record=False`` only checks (MAIL before any RCPT).

        A throttled attempt is always recorded: it counts towards rate and block.
        """
        self._touch(now)
        if self.blocked_until(now) is not None:
            return Admission.blocked
        attempts = self._attempts
        _trim(attempts, now - self.tolerance.window)
        if len(attempts) + 1 <= self._allowed_in_window():
            if record:
                attempts.append(now)
            return Admission.ok
        attempts.append(now)
        return self._throttle(now)

    def delivered(self, now: datetime, count: int = 1) -> None:
        """``count`` messages were accepted for existing mailboxes."""
        self._touch(now)
        self.clean += count
        today = now.date()
        if today != self._active_on:
            self._active_on = today
            self.active_days += 1.0

    def bounced(self, now: datetime, count: int = 1) -> None:
        """``count`` messages went to unknown users (in band or by a later DSN)."""
        self._touch(now)
        self.clean = max(0.0, self.clean - self.tolerance.bounce_cost * count)

    def _allowed_in_window(self) -> float:
        window_share = self.tolerance.window / _HOUR
        return self.tolerated_per_hour * window_share + self.tolerance.burst

    def _throttle(self, now: datetime) -> Admission:
        tolerance = self.tolerance
        self.clean *= 1.0 - tolerance.throttle_cost
        throttles = self._throttles
        _trim(throttles, now - tolerance.block_lookback)
        throttles.append(now)
        if len(throttles) < tolerance.block_after:
            return Admission.throttled
        throttles.clear()
        self._attempts.clear()
        self._blocked_until = now + tolerance.block_for
        self.clean *= tolerance.block_keep
        return Admission.blocked

    def _touch(self, now: datetime) -> None:
        """Forget part of an idle IP's history, then remember ``now`` as last seen."""
        last = self._last_seen_at
        self._last_seen_at = now
        if last is None:
            return
        idle = now - last - self.tolerance.idle_grace
        if idle <= timedelta(0):
            return
        keep = math.pow(0.5, idle / self.tolerance.idle_half_life)
        self.clean *= keep
        self.active_days *= keep


def _trim(times: deque[datetime], before: datetime) -> None:
    while times and times[0] <= before:
        times.popleft()
