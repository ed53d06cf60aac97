"""``warmup status``: every lane against its plan, problems first."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live

from warmup.adapters.db.reporting import campaign_summary, held_messages, last_events
from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.ports import IPOwner
from warmup.app.reputation import LOOKBACK, latest_figures
from warmup.app.store_rows import LastEvent
from warmup.cli.common import config_from, echo_json, out_console, run_async
from warmup.cli.outbound import consumer_names
from warmup.cli.status_auth import auth_records
from warmup.cli.status_reputation import reputation_records
from warmup.cli.status_view import Snapshot, render
from warmup.config import Config
from warmup.core.lanes.health import lane_problem
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.overflow import idle_reset_due
from warmup.core.lanes.pacing import next_window_open, window_containing
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import LaneState
from warmup.core.recipients.routing import schedule_for

__all__ = ["lane_record", "status"]

# Sort rank: paused, backed off, rates over the schedule's limits, the rest.
_RANK = {"paused": 0, "backed_off": 1, "high_rates": 2}

JSON_HELP = """
\b
--json prints one object per lane, problems first, with kind "lane" and:
  ip, isp, state        ramping | warmed | backed_off | paused
  owner                 null (no process holds the IP), or process
                        (node:pid), node, machine, alive (false: its
                        heartbeat lapsed; the next node takes it over)
  idle_reset            true: idle past the schedule's idle_reset, the
                        lane restarts at ramp day 1 before it next sends
                        (ramp_day and allowance already show that)
  paused_until          when a pause ends (null: not paused, or until resumed)
  opens_at              when its sending window opens, if it is closed now
  operator_paused       whether an operator paused it (`warmup pause`)
  problem               paused | backed_off | high_rates | null
                        (high_rates: a day of at least min_sample sends
                        over the limits that keep it from advancing; the
                        report and the metrics judge it the same way)
  ramp_day, last_ramp_day
  allowance_per_hour    rate in force as last saved (schedule x factor)
  schedule_per_hour     the configured rate of ramp_day
  backoff_factor
  local_day             the lane's current sending day; the counts cover it
  sent, planned, delivered, soft, throttle, hard, block, complaints
  deferred              soft + throttle
  delivered_pct, hard_pct, deferred_pct   of sent, 0-100
  last_sent_at
  last_event            null, or at, cause, old_state, new_state, reply,
                        detail
then one object with kind "campaigns" and campaigns, a list of objects:
  name, queued, sending, pending (queued + sending), delivered, bounced,
  suppressed, expired, total
then, when mail is held back, one object with kind "held" and held, a list of
objects: campaign, reason (e.g. no DKIM key for its From domain), recipients
then, once DMARC aggregate reports were ingested, one object with kind
"authentication" and ips, a list of objects:
  ip, day (latest reported), messages, dmarc_pass_pct, dkim_aligned_pct,
  spf_aligned_pct (that day, 0-100), days, messages_total,
  dmarc_pass_pct_total (every day read), auth_failing (ramp held)
then, with webhooks or an accounting log configured, one object with kind
  "events" and backlog: per consumer (webhook:URL, log:PATH) the outcome
  events it has still to take
then, once reputation data was fetched (the last 7 days), one object with kind
"reputation" and figures, a list of objects (latest day per domain and per IP):
  source (postmaster, snds), domain, ip, day, spam_rate_pct, domain_reputation,
  ip_reputation (sample IP -> category), spf_pct, dkim_pct, dmarc_pct
  (Postmaster's authentication success), filter_result, complaint_rate_pct,
  trap_hits, action (pause, hold or null), causes
"""


def _pct(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def _owner(owner: IPOwner | None, now: datetime) -> dict[str, Any] | None:
    if owner is None:
        return None
    return {
        "process": owner.claimer,
        "node": owner.node,
        "machine": owner.machine,
        "alive": owner.alive_until is not None and owner.alive_until >= now,
    }


def _opens_at(schedule: Schedule, now: datetime | None, tz: tzinfo) -> Any:
    """When the lane's sending window opens next, if it is closed at ``now``."""
    if now is None or window_containing(now, schedule.window, tz) is not None:
        return None
    return next_window_open(now, schedule.window, tz)


def lane_record(
    lane: Lane,
    allowance: float,
    schedule: Schedule,
    event: LastEvent | None,
    *,
    owner: IPOwner | None = None,
    now: datetime | None = None,
    tz: tzinfo = UTC,
) -> dict[str, Any]:
    """One lane's status as the JSON object ``--json`` prints."""
    problem = lane_problem(lane, schedule, now)
    idle = now is not None and idle_reset_due(lane, schedule, now)
    if idle:  # as the lane will be when its next day opens (core.lanes.overflow rule 4)
        lane = replace(lane, ramp_day=1, state=LaneState.ramping, factor=1.0)
        allowance = float(schedule.per_hour(1))
    stats = lane.stats
    deferred = stats.soft + stats.throttle
    return {
        "kind": "lane",
        "ip": lane.ip,
        "isp": lane.isp,
        "state": lane.state.value,
        "paused_until": lane.paused_until,
        "operator_paused": lane.operator,
        "opens_at": _opens_at(schedule, now, tz),
        "problem": None if problem is None else problem.value,
        "ramp_day": lane.ramp_day,
        "last_ramp_day": schedule.last_day,
        "allowance_per_hour": round(allowance, 2),
        "schedule_per_hour": schedule.per_hour(lane.ramp_day),
        "backoff_factor": lane.factor,
        "local_day": lane.day.isoformat() if lane.day else None,
        "sent": stats.attempted,
        "planned": schedule.per_day(lane.ramp_day),
        "delivered": stats.delivered,
        "soft": stats.soft,
        "throttle": stats.throttle,
        "hard": stats.hard,
        "block": stats.block,
        "deferred": deferred,
        "complaints": stats.complaints,
        "delivered_pct": _pct(stats.delivered, stats.attempted),
        "hard_pct": _pct(stats.hard, stats.attempted),
        "deferred_pct": _pct(deferred, stats.attempted),
        "last_sent_at": lane.last_sent_at,
        "last_event": event,
        "owner": _owner(owner, now) if now is not None else None,
        "idle_reset": idle,
    }


def _sort_key(record: dict[str, Any]) -> tuple[int, str, str]:
    return (_RANK.get(record["problem"] or "", 3), record["ip"], record["isp"])


async def _snapshot(
    store: SQLStore, config: Config, ips: tuple[str, ...], isps: tuple[str, ...]
) -> Snapshot:
    events = await last_events(store)
    owners = {owner.ip: owner for owner in await store.ip_owners()}
    now = SystemClock().now()
    records = []
    for lane_id, lane, saved in await store.all_lanes():
        if (ips and lane.ip not in ips) or (isps and lane.isp not in isps):
            continue
        schedule = schedule_for(lane.isp, config.schedules)
        record = lane_record(
            lane,
            saved,
            schedule,
            events.get(lane_id),
            owner=owners.get(lane.ip),
            now=now,
            tz=config.tz,
        )
        records.append(record)
    records.sort(key=_sort_key)
    auth = auth_records(await store.auth_days(ips or None), config.settings.dmarc)
    return Snapshot(
        lanes=records,
        campaigns=await campaign_summary(store),
        held=await held_messages(store),
        auth=auth,
        backlog=await store.backlog(consumer_names(config)),
        reputation=await _reputation(store, config, ips, now),
    )


async def _reputation(
    store: SQLStore, config: Config, ips: tuple[str, ...], now: datetime
) -> list[dict[str, Any]]:
    postmaster, snds = latest_figures(
        *await store.reputation_days(since=(now - LOOKBACK).date())
    )
    pool = [ip.address for ip in config.settings.ips]
    if ips:
        snds = [row for row in snds if row.ip in ips]
    return reputation_records(
        postmaster, snds, [ip for ip in pool if ip in ips or not ips]
    )


def _view(snapshot: Snapshot, console: Console, config: Config) -> Group:
    return render(snapshot, console, config.tz, SystemClock().now())


def _print_json(snapshot: Snapshot) -> None:
    for record in snapshot.lanes:
        echo_json(record)
    echo_json({"kind": "campaigns", "campaigns": snapshot.campaigns})
    if snapshot.held:
        echo_json({"kind": "held", "held": snapshot.held})
    if snapshot.auth:
        echo_json({"kind": "authentication", "ips": snapshot.auth})
    if snapshot.backlog:  # only with webhooks or an accounting log configured
        echo_json({"kind": "events", "backlog": snapshot.backlog})
    if snapshot.reputation:
        echo_json({"kind": "reputation", "figures": snapshot.reputation})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    ips: tuple[str, ...]
    isps: tuple[str, ...]
    as_json: bool
    watch: float | None
    iterations: int | None


async def _show(config: Config, request: _Request) -> None:
    store = await SQLStore.open(config.settings.database)
    try:
        snapshot = await _snapshot(store, config, request.ips, request.isps)
        if request.as_json:
            _print_json(snapshot)
        elif request.watch is None:
            console = out_console()
            console.print(_view(snapshot, console, config))
        else:
            await _watch(store, config, request, snapshot)
    finally:
        await store.close()


async def _watch(
    store: SQLStore, config: Config, request: _Request, snapshot: Snapshot
) -> None:
    assert request.watch is not None
    shown = 1
    console = out_console()
    if not console.is_terminal:  # a pipe: a fresh table each time, in order
        console.print(_view(snapshot, console, config))
        while request.iterations is None or shown < request.iterations:
            await asyncio.sleep(request.watch)
            snapshot = await _snapshot(store, config, request.ips, request.isps)
            console.print(_view(snapshot, console, config))
            shown += 1
        return
    with Live(_view(snapshot, console, config), console=console) as live:
        while request.iterations is None or shown < request.iterations:
            await asyncio.sleep(request.watch)
            snapshot = await _snapshot(store, config, request.ips, request.isps)
            live.update(_view(snapshot, console, config))
            shown += 1


@click.command(epilog=JSON_HELP)
@click.option("--ip", "ips", multiple=True, help="Only lanes of this IP (repeatable).")
@click.option("--isp", "isps", multiple=True, help="Only this ISP (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (fields below).")
@click.option(
    "--watch",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Refresh in place every SECONDS until Ctrl-C.",
)
@click.option("--watch-iterations", type=click.IntRange(min=1), hidden=True)
@click.pass_context
def status(
    ctx: click.Context,
    ips: tuple[str, ...],
    isps: tuple[str, ...],
    as_json: bool,
    watch: float | None,
    watch_iterations: int | None,
) -> None:
    """Every lane against its plan, problems first, then each campaign's counts.

    Sent/planned and the rates cover the lane's current sending day.
    """
    if as_json and watch is not None:
        raise click.UsageError("--watch and --json cannot be combined")
    config = config_from(ctx)
    request = _Request(
        ips=ips, isps=isps, as_json=as_json, watch=watch, iterations=watch_iterations
    )
    with contextlib.suppress(KeyboardInterrupt):
        run_async(_show(config, request))
