"""What the engine (warmup.app.dispatcher and warmup.app.outcome) is configured
with: one value built by the composition root (warmup.cli.engine) from the config.

Its own module so that the dispatcher and the outcome handler both read it and
neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo

from warmup.core.lanes.schedule import Schedule
from warmup.core.settings import (
    DeliverySettings,
    DMARCSettings,
    DNSSettings,
    ReputationSettings,
    SourceIP,
    UnsubscribeSettings,
)

__all__ = ["EngineSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    schedules: Mapping[str, Schedule]
    ips: Sequence[SourceIP]  # the source IPs this node may send from
    delivery: DeliverySettings
    return_path: str
    verp_secret: bytes
    tz: tzinfo
    node: str  # claimer name, unique per running process
    maintenance_every: timedelta = timedelta(minutes=1)
    idle_wake: timedelta = timedelta(minutes=1)
    # How often the operator's controls (pause, resume, cancel) are looked for.
    controls_every: timedelta = timedelta(seconds=2)
    # Slots a lane may send per tick. 1 in real time (a late tick never turns
    # into a burst); more on a virtual clock, where each send is stamped with
    # its own slot instant and ticks can be coarse.
    catch_up: int = 1
    # In real time (catch_up 1): how long a tick may keep a lane sending, each
    # send when its slot is due by the clock at that moment and stamped with it
    # (a lane that fell behind restarts its grid: no burst). 0: one send per
    # tick. Longer ticks mean fewer barriers and records (`warmup run` uses
    # it), and a crash window of one tick: what it sent is not yet recorded.
    burst: timedelta = timedelta(0)
    # ... and how many sends at most: what a crash may repeat, per lane.
    burst_sends: int = 16
    # Every configured IP, on whichever node (the overflow plan counts the
    # warming lanes of all of them); empty: ``ips``.
    pool: Sequence[SourceIP] = ()
    # A message held back unsigned (dkim.unsigned: hold) is looked at again after.
    hold_recheck: timedelta = timedelta(minutes=15)
    unsubscribe: UnsubscribeSettings = field(default_factory=UnsubscribeSettings)
    dmarc: DMARCSettings = field(default_factory=DMARCSettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    reputation: ReputationSettings = field(default_factory=ReputationSettings)
