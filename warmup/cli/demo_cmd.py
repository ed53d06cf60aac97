"""``warmup demo``: the main job with zero set-up."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time as walltime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from warmup.adapters.db.store import SQLStore
from warmup.adapters.mailboxes import MaildirInbox
from warmup.adapters.smtp import SMTPSender
from warmup.app.clock import SystemClock, VirtualClock
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.app.ports import MXAnswer
from warmup.app.simulation import simulate
from warmup.cli.common import run_async
from warmup.cli.demo_setup import (
    COMPLAINT_SHARE,
    DEMO_ISPS,
    STRICTNESS,
    DemoProject,
    bounce_maildir,
    database_url,
    load_list,
    make_project,
)
from warmup.cli.demo_summary import build_summary, lane_table, plain_words
from warmup.cli.engine import build_dispatcher
from warmup.cli.report_cmd import write_report
from warmup.sim.process import SimulatedISPProcess

__all__ = ["demo"]

TZ = ZoneInfo("Asia/Tokyo")
_SECRET = b"warmup-demo-verp-secret"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    days: int
    ips: int
    recipients: int
    seed: int
    scale: float
    directory: Path | None


class _NoMX:
    """The demo routes every ISP statically; nothing needs DNS."""

    async def mx(self, domain: str) -> MXAnswer:
        return MXAnswer(hosts=(f"mx.{domain}",))


@click.command()
@click.option(
    "--days",
    type=click.IntRange(1, 120),
    default=30,
    show_default=True,
    help="Simulated days.",
)
@click.option(
    "--ips",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Source IPs (127.0.0.2 …).",
)
@click.option(
    "--recipients",
    type=click.IntRange(100, 2_000_000),
    default=100_000,
    show_default=True,
    help="Size of the synthetic list.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--scale",
    type=click.FloatRange(0.001, 1.0),
    default=0.015,
    show_default=True,
    help="Ramp rates (and the simulated ISPs' tolerance) times this.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    help="Write the JSON summary here.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    help="Keep the demo's config and database here (default: a temp dir).",
)
def demo(
    days: int,
    ips: int,
    recipients: int,
    seed: int,
    scale: float,
    json_path: str | None,
    directory: str | None,
) -> None:
    """Warm IPs at simulated ISPs over simulated weeks, in under a minute.

    SQLite in a temp dir, simulated gmail, microsoft, yahoo, apple and default
    mail servers on loopback, source IPs 127.0.0.2 onwards, a synthetic list, and
    a virtual clock. Prints live progress, then the lanes and what happened.
    """
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    options = DemoOptions(
        days=days,
        ips=ips,
        recipients=recipients,
        seed=seed,
        scale=scale,
        directory=Path(directory) if directory else None,
    )
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=120)  # logs and CI get the whole table
    timer = PhaseTimer()
    summary, config_path = run_async(_demo(options, console, timer))
    summary["wall_seconds"] = round(timer.elapsed(), 1)
    summary["timings"] = timer.seconds()
    console.print(lane_table(summary))
    for line in plain_words(summary):
        console.print(f"• {line}")
    console.print(
        f"\nDone in {summary['wall_seconds']} s. The demo's config and database "
        f"stay in {config_path.parent}; look at them with\n"
        f"  warmup -c {config_path} status\n"
        f"  warmup -c {config_path} suppress list\n"
        f"The HTML report (plan against actual per lane, rates, events; opens "
        f"offline, written in {summary['report_seconds']} s):\n  {summary['report']}"
    )
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=1, default=str))
        console.print(f"JSON summary: {json_path}")


class PhaseTimer:
    """Wall seconds per phase of the demo, for ``--json``'s ``timings``."""

    def __init__(self) -> None:
        self._began = self._mark = walltime.perf_counter()
        self._phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """The time since the last lap counts to ``phase``."""
        now = walltime.perf_counter()
        self._phases[phase] = self._phases.get(phase, 0.0) + now - self._mark
        self._mark = now

    def elapsed(self) -> float:
        return walltime.perf_counter() - self._began

    def seconds(self) -> dict[str, float]:
        """Each phase in seconds, the rest (start-up, shut-down) as ``other``."""
        phases = {name: round(value, 2) for name, value in self._phases.items()}
        phases["other"] = round(self.elapsed() - sum(self._phases.values()), 2)
        phases["total"] = round(self.elapsed(), 2)
        # CPU seconds of this process (not the simulated ISPs' child): on a
        # shared machine, steadier than the wall figures.
        phases["cpu"] = round(walltime.process_time(), 2)
        return phases


async def _demo(
    options: DemoOptions, console: Console, timer: PhaseTimer
) -> tuple[dict[str, Any], Path]:
    local_midnight = datetime.combine(
        SystemClock().now().astimezone(TZ).date(), datetime.min.time(), tzinfo=TZ
    )
    clock = VirtualClock(local_midnight)
    scales = {isp: options.scale * STRICTNESS.get(isp, 1.0) for isp in DEMO_ISPS}
    root = options.directory or Path(tempfile.mkdtemp(prefix="warmup-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    isps = SimulatedISPProcess(
        scales,
        seed=options.seed,
        start=local_midnight,
        reports_maildir=str(bounce_maildir(root)),
        complaint_share=COMPLAINT_SHARE,
    )
    # The simulated ISPs' process starts (~0.8 s: a Python start and its
    # imports, on the other core) while this one queues the list.
    starting = asyncio.create_task(isps.start())
    try:
        store = await SQLStore.open(database_url(root))
        try:
            summary, project = await _simulate(
                store, root, starting, clock, isps, options, console, timer
            )
        finally:
            await store.close()
    finally:
        if not starting.done():
            starting.cancel()
        isp_stats = await isps.stop()
    summary["isp_servers"] = {name: _isp_stats(s) for name, s in isp_stats.items()}
    return summary, project.config_path


async def _simulate(
    store: SQLStore,
    root: Path,
    starting: asyncio.Task[dict[str, int]],
    clock: VirtualClock,
    isps: SimulatedISPProcess,
    options: DemoOptions,
    console: Console,
    timer: PhaseTimer,
) -> tuple[dict[str, Any], DemoProject]:
    start = clock.now()
    timer.lap("setup")
    with console.status("generating and queueing the synthetic list…"):
        loaded = await load_list(
            store, recipients=options.recipients, seed=options.seed, now=start
        )
    timer.lap("list_load")
    console.print(
        f"queued {loaded.queued:,} recipients for {options.ips} IPs "
        f"(ramps at {options.scale:g}x so {options.days} days fit in a minute)"
    )
    project = make_project(
        ips=options.ips, ports=await starting, directory=root, scale=options.scale
    )
    sender = SMTPSender(
        timeouts=project.config.settings.delivery.timeouts,
        tls=project.config.settings.delivery.tls,
    )
    try:
        timer.lap("setup")
        dispatcher = build_dispatcher(
            project.config,
            store=store,
            sender=sender,
            resolver=_NoMX(),
            clock=clock,
            secret=_SECRET,
            maintenance_every=timedelta(hours=6),
            idle_wake=timedelta(minutes=30),
            catch_up=10_000,
            # Virtual time: the operator's controls and the heartbeat (one
            # process, see the demo's ip_lease) need not run on every 5-minute
            # tick; each is a store round trip or more.
            controls_every=timedelta(hours=1),
        )
        intake = BounceIntake.configured(
            store,
            clock=clock,
            settings=project.config.settings.bounces,
            retry=project.config.settings.delivery.retry,
            secret=_SECRET,
        )
        await _run(
            dispatcher,
            clock,
            isps,
            options,
            console,
            _mailbox_poll(intake, project.directory),
        )
        await dispatcher.finish()
        timer.lap("simulation")
        meta = {
            "days_simulated": options.days,
            "ips": options.ips,
            "seed": options.seed,
            "scale": options.scale,
            "start": start.date().isoformat(),
            "queued": loaded.queued,
        }
        summary = await build_summary(store, start=start.date(), meta=meta)
        summary |= await _write_report(store, project, clock)
        timer.lap("report")
        return summary, project
    finally:
        await sender.close()


def _mailbox_poll(
    intake: BounceIntake, root: Path
) -> Callable[[datetime], Awaitable[object]]:
    """Read the bounce mailbox the simulated ISPs mail into, every virtual 15
    minutes, as `warmup run` does with bounces.maildir.

    A poll whose ``new/`` is empty stops there (a listing of an empty
    directory), sparing most polls their trips to a worker thread: the demo's
    mails arrive only in ``new/``, and a mail that could not be saved stays
    there for the next poll."""
    inbox = MaildirInbox(bounce_maildir(root))
    arrivals = bounce_maildir(root) / "new"
    due: list[datetime] = []

    async def poll(now: datetime) -> None:
        if due and now < due[0]:
            return
        due[:] = [now + timedelta(minutes=15)]
        if os.listdir(arrivals):
            await intake.drain(inbox)

    return poll


async def _write_report(
    store: SQLStore, project: DemoProject, clock: VirtualClock
) -> dict[str, Any]:
    path = project.directory / "report.html"
    began = walltime.perf_counter()
    size = await write_report(
        store, project.config, path, now=clock.now(), title="warmup demo report"
    )
    seconds = round(walltime.perf_counter() - began, 2)
    return {"report": str(path), "report_bytes": size, "report_seconds": seconds}


def _isp_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """What each simulated ISP saw, summed over source IPs."""
    totals: dict[str, Any] = {
        "received": stats["received"],
        "dsn_pending": stats["dsn_pending"],
    }
    for per_ip in stats["per_ip"].values():
        for name in ("throttled", "blocked", "unknown", "full", "greylisted"):
            totals[name] = totals.get(name, 0) + per_ip[name]
    return totals


async def _run(
    dispatcher: Dispatcher,
    clock: VirtualClock,
    isps: SimulatedISPProcess,
    options: DemoOptions,
    console: Console,
    poll: Callable[[datetime], Awaitable[object]],
) -> None:
    start = clock.now()
    until = start + timedelta(days=options.days)
    progress = Progress(
        TextColumn("[bold]day {task.completed:.0f}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    with progress:
        task = progress.add_task("simulating", total=options.days, detail="")

        def step(now: datetime) -> None:
            isps.set_time(now)  # the simulated ISPs judge by the same clock
            verdicts = dispatcher.stats.by_verdict
            backed = sum(
                1
                for r in dispatcher.lanes.values()
                if r.lane.state.value in ("backed_off", "paused")
            )
            progress.update(
                task,
                completed=(now - start) / timedelta(days=1),
                detail=(
                    f"{len(dispatcher.lanes)} lanes · sent {dispatcher.stats.sent:,} · "
                    f"delivered {verdicts.get('delivered', 0):,} · throttled "
                    f"{verdicts.get('throttle', 0):,} · backed off/paused {backed}"
                ),
            )

        await simulate(
            dispatcher,
            clock,
            until=until,
            quantum=timedelta(minutes=5),
            on_step=step,
            between=poll,
        )
