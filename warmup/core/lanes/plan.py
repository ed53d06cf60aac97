"""Capacity forecast: on which ramp day can a pool of IPs carry a daily volume?"""

from __future__ import annotations

from dataclasses import dataclass

from warmup.core.lanes.schedule import Schedule

__all__ = ["PlanRow", "plan_volume"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRow:
    isp: str
    ips: int
    volume: int
    # First ramp day whose pool capacity reaches the volume; None if it never does.
    day: int | None
    # Messages sent from day 1 through ``day`` (or through the last ramp day).
    sent_until_then: int
    capacity_on_day: int
    max_capacity: int
    # IPs needed to carry the volume once warmed.
    ips_needed_when_warmed: int


def plan_volume(schedule: Schedule, *, ips: int, volume: int) -> PlanRow:
    """Walk the ramp day by day, each day sending min(pool capacity, volume)."""
    if ips < 1:
        raise ValueError(f"need at least one IP, got {ips!r}")
    if volume < 1:
        raise ValueError(f"volume must be positive, got {volume!r}")
    sent = 0
    capacity = 0
    for day in range(1, schedule.last_day + 2):
        capacity = ips * schedule.per_day(day)
        sent += min(capacity, volume)
        if capacity >= volume:
            return _row(schedule, ips, volume, day, sent, capacity)
    return _row(schedule, ips, volume, None, sent, capacity)


def _row(
    schedule: Schedule, ips: int, volume: int, day: int | None, sent: int, capacity: int
) -> PlanRow:
    warmed_per_ip = schedule.per_day(schedule.last_day + 1)
    needed = -(-volume // warmed_per_ip) if warmed_per_ip else 0
    return PlanRow(
        isp=schedule.isp,
        ips=ips,
        volume=volume,
        day=day,
        sent_until_then=sent,
        capacity_on_day=capacity,
        max_capacity=ips * warmed_per_ip,
        ips_needed_when_warmed=needed,
    )
