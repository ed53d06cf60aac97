"""One lane at run time: its state, claimed recipients and what it may do now."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from warmup.core.attempt import Claimed, DayRecord, LaneRecord, TickRecord
from warmup.core.auth.dmarc import AuthDay
from warmup.core.lanes.backoff import unreachable_hold
from warmup.core.lanes.lane import (
    Lane,
    LaneEvent,
    RampHold,
    auth_hold,
    close_day,
    lane_rate,
    ramp_hold_event,
    reputation_pause,
    resume,
    with_last_sent,
)
from warmup.core.lanes.pacing import (
    next_slot,
    next_window_open,
    slot_interval,
    window_bounds,
    window_containing,
)
from warmup.core.lanes.rolling import RollingWindow
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneCause, LaneState
from warmup.core.settings import SourceIP

__all__ = ["LaneRuntime"]

_MINUTE = timedelta(seconds=60)
_IDLE_RECHECK = timedelta(minutes=1)
_INSTANT = timedelta(microseconds=1)
# An overflow lane with nothing to take looks again this often (inside its window).
_PACE_RECHECK = timedelta(seconds=10)


@dataclass(slots=True, kw_only=True)
class LaneRuntime:
    """A lane plus what only this process knows about it."""

    id: int
    lane: Lane
    schedule: Schedule
    source: SourceIP
    tz: tzinfo
    # Overflow lanes (an IP already warm for the ISP) only take the excess.
    overflow: bool = False
    # An overflow lane's even share of the overflow per hour (core.lanes.overflow rule
    # 3), set at each beat; it paces at the lower of this and its own rate.
    pace_cap: float | None = None
    buffer: deque[Claimed] = field(default_factory=deque)
    planned: int = 0
    day_rate: float = 0.0
    sends: deque[datetime] = field(default_factory=deque)
    max_minute: int = 0
    idle_until: datetime | None = None
    # When the claim behind ``buffer`` runs out; past it the mail may be another
    # node's, so what is left of the buffer is handed back unsent.
    lease_until: datetime | None = None
    # No slot before this: set when a window opens, a pause ends or an idle lane
    # gets mail again, so catch-up never stamps sends into a gap.
    not_before: datetime | None = None
    # Sends in a row that reached no host of the ISP, and the hold they earned
    # (core.lanes.backoff.unreachable_hold); this process's knowledge only.
    unreachable: int = 0
    unreachable_until: datetime | None = None
    # The last rates.window of outcomes (core.lanes.lane rule 7); rebuilt from the store
    # when the lane is loaded.
    window: RollingWindow = field(init=False)
    dirty: bool = False
    # What holds the ramp now, by source ("dmarc": the IP's failing DMARC day,
    # core.auth.dmarc; "reputation": the ISP's own data, core.lanes.reputation).
    holds: dict[str, RampHold] = field(default_factory=dict)
    # The reputation pause this process applied last (one pause per figure).
    reputation_paused: str | None = None
    # The pacing window's instance around the last ``now`` asked, and the next
    # opening after it: both hold until time passes them (asked for every send).
    _open_window: tuple[datetime, datetime] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _next_open: tuple[datetime, datetime] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.window = RollingWindow(self.schedule.reactions.rates.window)

    @property
    def rate(self) -> float:
        return lane_rate(self.lane, self.schedule)

    @property
    def pace(self) -> float:
        """The rate the lane's sends are spaced at now."""
        rate = self.rate
        return rate if self.pace_cap is None else min(rate, self.pace_cap)

    def _update(self, lane: Lane, events: list[LaneEvent], record: TickRecord) -> None:
        # Most calls hand back the very lane (nothing changed): no field compare.
        if lane is not self.lane and lane != self.lane:
            self.lane = lane
            self.dirty = True
        record.events.extend((self.id, event) for event in events)

    def set_auth(self, auth: AuthDay | None, now: datetime, record: TickRecord) -> None:
        """What the IP's DMARC reports say now; a newly failing day is an event."""
        self.set_hold("dmarc", None if auth is None else auth_hold(auth), now, record)

    def set_hold(
        self,
        source: str,
        hold: RampHold | None,
        now: datetime,
        record: TickRecord,
        *,
        announce: bool = True,
    ) -> None:
        """What ``source`` says holds the ramp now; a new hold is an event
        (unless another event tells it, ``announce=False``)."""
        if hold is None:
            self.holds.pop(source, None)
            return
        if announce and hold != self.holds.get(source):
            record.events.append((self.id, ramp_hold_event(self.lane, hold, now)))
        self.holds[source] = hold

    def pause_for_reputation(
        self, detail: str, until: datetime, now: datetime, record: TickRecord
    ) -> None:
        """The ISP's own data says stop (core.lanes.lane rule 9), once per figure."""
        if detail == self.reputation_paused:
            return
        self.reputation_paused = detail
        lane, events = reputation_pause(self.lane, now=now, until=until, detail=detail)
        if lane.state is LaneState.paused and lane is not self.lane:
            self.hand_back(record)
        self._update(lane, events, record)

    def snapshot(self) -> LaneRecord:
        return LaneRecord(lane_id=self.id, lane=self.lane, allowance_per_hour=self.rate)

    def day_record(self) -> DayRecord | None:
        lane = self.lane
        if lane.day is None:
            return None
        return DayRecord(
            lane_id=self.id,
            day=lane.day,
            ramp_day=lane.ramp_day,
            allowance_per_hour=self.day_rate,
            planned=self.planned,
            stats=lane.stats,
            max_per_minute=self.max_minute,
        )

    def _start_day(
        self, window: tuple[datetime, datetime], now: datetime, record: TickRecord
    ) -> None:
        day = window[0].astimezone(self.tz).date()
        if self.lane.day == day:
            if not self.planned:
                self._plan_day(window)
            return
        if not self.planned and self.lane.day is not None:
            # A fresh process: rebuild the finished day's plan from its ramp day,
            # so a restart between days does not make a good day "repeat".
            self._plan_day(window_bounds(self.lane.day, self.schedule.window, self.tz))
        finished = self.day_record() if self.lane.stats.attempted else None
        if finished is not None:
            record.days.append(finished)
        lane, events = close_day(
            self.lane,
            new_day=day,
            now=now,
            planned=self.planned,
            schedule=self.schedule,
            holds=tuple(self.holds[source] for source in sorted(self.holds)),
        )
        self._update(lane, events, record)
        self.max_minute = 0
        self._plan_day(window)

    def _plan_day(self, window: tuple[datetime, datetime]) -> None:
        hours = (window[1] - window[0]) / timedelta(hours=1)
        self.day_rate = self.schedule.per_hour(self.lane.ramp_day)
        self.planned = math.floor(self.day_rate * hours + 1e-9)

    def due_slot(
        self, now: datetime, record: TickRecord
    ) -> tuple[datetime | None, datetime]:
        """(slot, now) when a send is due at ``slot`` <= now; else (None, wake-up):
        when the lane may send next. Time may change the lane before that (see
        ``next_change``)."""
        wake, slot = self._next_action(now, record)
        if wake is not None:
            return None, wake
        if self.not_before is not None:
            slot = max(slot, self.not_before)
        return min(slot, now), now

    def _window_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """``window_containing(now, …)``, kept while ``now`` stays inside it."""
        cached = self._open_window
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        self._open_window = window_containing(now, self.schedule.window, self.tz)
        return self._open_window

    def next_window(self, now: datetime) -> datetime:
        """``next_window_open(now, …)``: the same opening answers every moment
        from the one it was worked out for up to the opening itself."""
        cached = self._next_open
        if cached is not None and cached[0] <= now <= cached[1]:
            return cached[1]
        opens = next_window_open(now, self.schedule.window, self.tz)
        self._next_open = (now, opens)
        return opens

    def _next_action(
        self, now: datetime, record: TickRecord
    ) -> tuple[datetime | None, datetime]:
        """(None, its slot) if the lane should send now; else (when to look at
        it again, now)."""
        window = self._window_at(now)
        if window is not None:
            self._start_day(window, now, record)
            self.not_before = max(self.not_before or window[0], window[0])
        lane, events = resume(self.lane, now=now, schedule=self.schedule)
        if any(event.cause in ("resume", "operator_resume") for event in events):
            self.not_before = now
        self._update(lane, events, record)
        lane = self.lane
        if lane.state is LaneState.paused:
            wake = lane.paused_until or next_window_open(
                now, self.schedule.window, self.tz
            )
            return wake, now
        if window is None:
            return next_window_open(now, self.schedule.window, self.tz), now
        if lane.stats.attempted >= self.planned:
            return window[1], now  # the day's allowance is used up
        if self.unreachable_until is not None and now < self.unreachable_until:
            return self.unreachable_until, now  # the ISP's hosts were not reached
        pace = self.pace
        if pace <= 0:
            return now + _PACE_RECHECK, now  # an overflow lane with nothing to take
        slot = next_slot(
            last_sent_at=lane.last_sent_at,
            per_hour=pace,
            window=self.schedule.window,
            tz=self.tz,
            now=now,
        )
        if slot > now:
            return (
                slot if lane.recover_at is None else min(slot, lane.recover_at)
            ), now
        if not self.buffer and self.idle_until is not None and now < self.idle_until:
            return self.idle_until, now
        return None, slot

    def next_wake(self, now: datetime) -> datetime:
        """After a send: the next slot (the next tick re-checks everything)."""
        rate = self.pace
        if rate <= 0 or self.lane.last_sent_at is None:
            return now + _IDLE_RECHECK
        return max(self.lane.last_sent_at + slot_interval(rate), now)

    def next_change(self, now: datetime) -> datetime:
        """The next instant at which time alone changes the lane: its pause
        ends, its hold ends or a recovery step is due (core.lanes.lane rules 3 and 4),
        or its next window opens (the day closes then, rule 5). A caller that
        leaves the lane alone until min(wake-up, this) misses nothing."""
        change = next_window_open(now + _INSTANT, self.schedule.window, self.tz)
        lane = self.lane
        if lane.state is LaneState.paused:
            if lane.paused_until is not None:
                change = min(change, max(lane.paused_until, now))
        elif lane.state is LaneState.backed_off and lane.recover_at is not None:
            change = min(change, max(lane.recover_at, now))
        return change

    def claim_size(self, batch_size: int) -> int:
        """Recipients to claim: what the lane can send today, at most 4 h of it."""
        left = max(self.planned - self.lane.stats.attempted, 1)
        four_hours = max(1, math.ceil(self.pace * 4))
        return max(1, min(batch_size, left, four_hours))

    def lease_for(self, count: int, margin: timedelta) -> timedelta:
        """Long enough to send ``count`` at the current rate, plus ``margin``."""
        rate = self.pace or self.day_rate or 1.0
        return margin + timedelta(hours=count / rate)

    def hand_back(self, record: TickRecord) -> None:
        """Return the claimed, unsent buffer to the queue (under its lease)."""
        self.give_back(self.buffer, record)
        self.buffer.clear()

    def give_back(self, claimed: Iterable[Claimed], record: TickRecord) -> None:
        """Return claimed, unsent recipients to the queue (under their leases)."""
        record.released.extend(
            (c.id, lease) for c in claimed if (lease := self._lease(c)) is not None
        )

    def hand_back_beyond(self, keep: int, record: TickRecord) -> int:
        """Return the least engaged claimed mail beyond ``keep`` (what the lane
        will still send today), so overflow can take it; how many went back."""
        extra = max(len(self.buffer) - max(keep, 0), 0)
        if not extra or self.lease_until is None:
            return 0
        for _ in range(extra):
            claimed = self.buffer.pop()
            lease = self._lease(claimed)
            if lease is not None:
                record.released.append((claimed.id, lease))
        return extra

    def first_lease_end(self) -> datetime | None:
        """When the oldest claim in the buffer runs out (None: nothing claimed)."""
        return self._lease(self.buffer[0]) if self.buffer else None

    def _lease(self, claimed: Claimed) -> datetime | None:
        """The lease ``claimed`` was taken under (each claim has its own)."""
        return claimed.lease_until or self.lease_until

    def mark_idle(self, now: datetime) -> None:
        self.idle_until = now + _IDLE_RECHECK

    def sent(self, now: datetime) -> None:
        """Advance pacing after a send at ``now`` (its slot may have been earlier)."""
        rate = self.pace or self.day_rate or 1.0
        slot = next_slot(
            last_sent_at=self.lane.last_sent_at,
            per_hour=rate,
            window=self.schedule.window,
            tz=self.tz,
            now=now,
        )
        # Stay on the slot grid unless we fell a whole interval behind: then
        # restart from now, so a stall never turns into a burst.
        on_grid = slot if now - slot < slot_interval(rate) else now
        self.lane = with_last_sent(self.lane, min(on_grid, now))
        self.dirty = True
        self.sends.append(now)
        while self.sends and now - self.sends[0] >= _MINUTE:
            self.sends.popleft()
        self.max_minute = max(self.max_minute, len(self.sends))

    def react(self, lane: Lane, events: list[LaneEvent], record: TickRecord) -> None:
        self._update(lane, events, record)

    def reached(self, reachable: bool, now: datetime, record: TickRecord) -> None:
        """After a send: count sends in a row that reached no host, and hold the
        lane once that count earns a hold (an event says so)."""
        if reachable:
            self.unreachable, self.unreachable_until = 0, None
            return
        self.unreachable += 1
        hold = unreachable_hold(self.unreachable)
        if hold is None:
            return
        self.unreachable_until = now + hold
        state = self.lane.state
        event = LaneEvent(
            at=now,
            cause=LaneCause.unreachable,
            old_state=state,
            new_state=state,
            detail=(
                f"{self.unreachable} sends in a row reached no host: "
                f"holding until {self.unreachable_until.isoformat()}"
            ),
        )
        record.events.append((self.id, event))
