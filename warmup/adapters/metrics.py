"""Prometheus metrics of `warmup run` (prometheus_client, on its own registry).

The figures are read from the database on start and every ``refresh`` into a
snapshot; a scrape only formats the snapshot, so it never waits on the database.
Counters are lifetime totals kept in the database, so they survive restarts and
agree with `warmup status` and `warmup report`. The names are listed in the README
("Metrics").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from warmup.adapters.db.metrics_queries import (
    LaneTotals,
    QueueTotals,
    lane_totals,
    queue_totals,
)
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import Clock
from warmup.core.errors import WarmupError
from warmup.core.lanes.health import LaneProblem, lane_problem
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneState
from warmup.core.recipients.routing import schedule_for
from warmup.core.relay.counts import RelayCounts
from warmup.core.settings import MetricsSettings

__all__ = ["LANE_COUNTERS", "MetricsExporter", "exporting"]

logger = logging.getLogger(__name__)

_LANE = ["ip", "isp"]
# Counter name (without _total) -> (help, the lane counts it adds up).
LANE_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "warmup_lane_sent": (
        "Messages the lane handed to the ISP, whatever the reply.",
        ("attempted",),
    ),
    "warmup_lane_delivered": ("Messages the ISP accepted (2xx).", ("delivered",)),
    "warmup_lane_deferred": (
        "Temporary failures (4xx): soft ones and throttles; retried later.",
        ("soft", "throttle"),
    ),
    "warmup_lane_bounced": (
        "Hard bounces: the recipient was refused for good and suppressed.",
        ("hard",),
    ),
    "warmup_lane_throttled": (
        "Throttle replies (e.g. 421 4.7.28); each cut the lane's rate.",
        ("throttle",),
    ),
    "warmup_lane_blocked": (
        "Block replies aimed at the sender; each paused the lane.",
        ("block",),
    ),
    "warmup_lane_complaints": (
        "Complaints (ARF) attributed to the lane.",
        ("complaints",),
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Snapshot:
    lanes: tuple[LaneTotals, ...] = ()
    queue: QueueTotals | None = None
    refreshed_at: datetime | None = None
    oldest_pending_age: timedelta | None = None
    event_backlog: dict[str, int] = field(default_factory=dict)
    # (ip, isp) -> why the lane needs a look (core.lanes.health), None: healthy.
    problems: dict[tuple[str, str], str | None] = field(default_factory=dict)


def _none() -> int:
    return 0


def _no_relay() -> RelayCounts | None:
    return None


@dataclass(slots=True)
class _State:
    snapshot: _Snapshot = field(default_factory=_Snapshot)
    refresh_errors: int = 0
    # Read at scrape time from the running dispatcher and relay.
    store_failures: Callable[[], int] = _none
    relay: Callable[[], RelayCounts | None] = _no_relay


class _WarmupCollector(Collector):
    """Yields the latest snapshot's metrics at scrape time (any thread)."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        snapshot = self._state.snapshot  # one read: a consistent snapshot
        yield from _lane_metrics(snapshot.lanes)
        yield _problem_metric(snapshot)
        yield from _queue_metrics(snapshot)
        errors = CounterMetricFamily(
            "warmup_metrics_refresh_errors",
            "Refreshes of these figures that failed (the last good ones stay).",
        )
        errors.add_metric([], self._state.refresh_errors)
        yield errors
        failures = CounterMetricFamily(
            "warmup_store_failures",
            "Database operations that failed (the database away): a tick's "
            "record, written again until it is stored, a lane's claim, or a "
            "relayed message answered 451.",
        )
        failures.add_metric([], self._state.store_failures())
        yield failures
        relay = self._state.relay()
        if relay is not None:
            yield from _relay_metrics(relay)


def _relay_metrics(counts: RelayCounts) -> Iterator[Metric]:
    """The relay's counters, of this process (they start at 0 at each start)."""
    accepted = CounterMetricFamily(
        "warmup_relay_accepted",
        "Messages the relay accepted for sending (250 after DATA).",
    )
    accepted.add_metric([], counts.accepted)
    yield accepted
    refused = CounterMetricFamily(
        "warmup_relay_refused",
        "Replies of the relay that refused something, by reason (suppressed: "
        "recipients dropped because they are on the suppression list).",
        labels=["reason"],
    )
    for reason, count in sorted(dict(counts.refused).items()):
        refused.add_metric([reason], count)
    yield refused
    failures = CounterMetricFamily(
        "warmup_relay_auth_failures", "Failed AUTH attempts at the relay (535)."
    )
    failures.add_metric([], counts.auth_failures)
    yield failures
    campaigns = CounterMetricFamily(
        "warmup_relay_campaign_accepted",
        "Messages the relay accepted, per campaign (the first 100 campaigns "
        "seen by this process; later ones count as _other).",
        labels=["campaign"],
    )
    for name, count in sorted(dict(counts.campaigns).items()):
        campaigns.add_metric([name], count)
    yield campaigns


def _lane_metrics(lanes: tuple[LaneTotals, ...]) -> Iterator[Metric]:
    for name, (doc, parts) in LANE_COUNTERS.items():
        counter = CounterMetricFamily(name, doc, labels=_LANE)
        for lane in lanes:
            total = sum(lane.totals[part] for part in parts)
            counter.add_metric([lane.ip, lane.isp], total)
        yield counter
    gauges: dict[str, tuple[str, Callable[[LaneTotals], float]]] = {
        "warmup_lane_allowance_per_hour": (
            "Messages per hour the lane may send now (schedule rate x backoff).",
            lambda lane: lane.allowance_per_hour,
        ),
        "warmup_lane_backoff_factor": (
            "Backoff factor on the schedule rate (1 = none, 0.5 after a throttle).",
            lambda lane: lane.backoff_factor,
        ),
        "warmup_lane_ramp_day": (
            "The lane's warm-up day (1 = its first sending day).",
            lambda lane: float(lane.ramp_day),
        ),
    }
    for name, (doc, value) in gauges.items():
        gauge = GaugeMetricFamily(name, doc, labels=_LANE)
        for lane in lanes:
            gauge.add_metric([lane.ip, lane.isp], value(lane))
        yield gauge
    state = GaugeMetricFamily(
        "warmup_lane_state",
        "1 for the lane's current state, 0 for the others.",
        labels=[*_LANE, "state"],
    )
    for lane in lanes:
        for name in LaneState:
            current = 1.0 if lane.state == name.value else 0.0
            state.add_metric([lane.ip, lane.isp, name.value], current)
    yield state


def _problem_metric(snapshot: _Snapshot) -> Metric:
    problem = GaugeMetricFamily(
        "warmup_lane_problem",
        "1 for why the lane needs a look (paused, backed_off, high_rates: judged "
        "as `warmup status` and the report judge it), 0 for the others.",
        labels=[*_LANE, "problem"],
    )
    for lane in snapshot.lanes:
        found = snapshot.problems.get((lane.ip, lane.isp))
        for name in LaneProblem:
            current = 1.0 if found == name.value else 0.0
            problem.add_metric([lane.ip, lane.isp, name.value], current)
    return problem


def _problems(
    lanes: list[tuple[int, Lane, float]],
    schedules: Mapping[str, Schedule],
    now: datetime,
) -> dict[tuple[str, str], str | None]:
    found: dict[tuple[str, str], str | None] = {}
    for _, lane, _allowance in lanes:
        # A loaded config always has a default schedule; none given: rule 2 only.
        schedule = schedule_for(lane.isp, schedules) if schedules else None
        problem = lane_problem(lane, schedule, now)
        found[(lane.ip, lane.isp)] = None if problem is None else problem.value
    return found


def _queue_metrics(snapshot: _Snapshot) -> Iterator[Metric]:
    queue = snapshot.queue
    if queue is None:  # not read yet
        return
    recipients = GaugeMetricFamily(
        "warmup_recipients", "Recipients in the database by state.", labels=["state"]
    )
    for name, count in sorted(queue.by_state.items()):
        recipients.add_metric([name], count)
    yield recipients
    depth = GaugeMetricFamily(
        "warmup_queue_depth",
        'Queued recipients per ISP (isp="" until routing has found the ISP).',
        labels=["isp"],
    )
    for isp, count in sorted(queue.queued_by_isp.items()):
        depth.add_metric([isp], count)
    yield depth
    yield GaugeMetricFamily(
        "warmup_retry_backlog",
        "Queued recipients waiting for a retry after a soft failure.",
        value=queue.retry_backlog,
    )
    yield GaugeMetricFamily(
        "warmup_held_unsigned",
        "Queued recipients held back unsent: no DKIM key covers the From domain "
        "(dkim.unsigned: hold).",
        value=queue.held,
    )
    age = snapshot.oldest_pending_age
    yield GaugeMetricFamily(
        "warmup_oldest_pending_age_seconds",
        "Age of the oldest queued or sending recipient (0 when none).",
        value=age.total_seconds() if age is not None else 0.0,
    )
    backlog = GaugeMetricFamily(
        "warmup_event_backlog",
        "Outcome events not yet taken by each consumer (webhook, accounting log).",
        labels=["consumer"],
    )
    for name, count in sorted(snapshot.event_backlog.items()):
        backlog.add_metric([name], count)
    yield backlog
    assert snapshot.refreshed_at is not None
    yield GaugeMetricFamily(
        "warmup_metrics_refreshed_timestamp_seconds",
        "When these figures were last read from the database (Unix time).",
        value=snapshot.refreshed_at.timestamp(),
    )


class MetricsExporter:
    """The metrics of one `warmup run`: a registry, refreshed from the store."""

    def __init__(
        self,
        store: SQLStore,
        clock: Clock,
        *,
        ips: Collection[str] | None = None,
        consumers: Collection[str] = (),
        schedules: Mapping[str, Schedule] | None = None,
    ) -> None:
        self._store = store
        self._schedules = dict(schedules or {})
        self._clock = clock
        self._ips = None if ips is None else frozenset(ips)
        self._consumers = tuple(consumers)
        self._state = _State()
        self.address: tuple[str, int] | None = None  # where serve() listens
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_WarmupCollector(self._state))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def count_store_failures(self, read: Callable[[], int]) -> None:
        """Report ``read()`` (this process's failed writes so far) at each scrape."""
        self._state.store_failures = read

    def count_relay(self, read: Callable[[], RelayCounts | None]) -> None:
        """Report the relay's counts (``read()``, None: no relay) at each scrape."""
        self._state.relay = read

    async def refresh(self) -> bool:
        """Read the figures again; on failure keep the last ones and say False."""
        now = self._clock.now()
        try:
            lanes = await lane_totals(self._store)
            queue = await queue_totals(self._store)
            backlog = await self._store.backlog(self._consumers)
            saved = await self._store.all_lanes()
        except Exception:
            self._state.refresh_errors += 1
            logger.warning("metrics: reading the database failed", exc_info=True)
            return False
        oldest = queue.oldest_pending_at
        self._state.snapshot = _Snapshot(
            lanes=tuple(
                lane for lane in lanes if self._ips is None or lane.ip in self._ips
            ),
            queue=queue,
            refreshed_at=now,
            oldest_pending_age=max(now - oldest, timedelta(0)) if oldest else None,
            event_backlog=backlog,
            problems=_problems(saved, self._schedules, now),
        )
        return True

    async def keep_fresh(self, every: timedelta) -> None:
        """Refresh every ``every`` until cancelled."""
        while True:
            await self._clock.sleep(every.total_seconds())
            await self.refresh()

    async def serve(self, host: str, port: int) -> WSGIServer:
        """Serve /metrics from a daemon thread; the caller shuts the server down."""
        try:
            server, _thread = await asyncio.to_thread(
                start_http_server, port, host, self.registry
            )
        except OSError as exc:
            raise WarmupError(
                f"cannot serve metrics on {host}:{port} (metrics.listen): {exc}"
            ) from exc
        bound = server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        return server


@asynccontextmanager
async def exporting(
    settings: MetricsSettings,
    *,
    store: SQLStore,
    clock: Clock,
    ips: Collection[str] | None = None,
    consumers: Collection[str] = (),
    schedules: Mapping[str, Schedule] | None = None,
) -> AsyncIterator[MetricsExporter | None]:
    """Serve metrics for the duration of the block (nothing when not enabled).

    ``ips`` limits the lane metrics to this node's source IPs; the queue metrics
    cover the whole database.
    """
    if not settings.enabled:
        yield None
        return
    exporter = MetricsExporter(
        store, clock, ips=ips, consumers=consumers, schedules=schedules
    )
    await exporter.refresh()
    server = await exporter.serve(settings.listen_host, settings.listen_port)
    assert exporter.address is not None
    host, port = exporter.address
    logger.info(
        "metrics: serving http://%s:%d/metrics",
        host,
        port,
        extra={"metrics_host": host, "metrics_port": port},
    )
    task = asyncio.create_task(exporter.keep_fresh(settings.refresh))
    try:
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.to_thread(server.shutdown)
        server.server_close()
