"""``warmup report``: the HTML report with plots."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.private_file import write_private
from warmup.adapters.report_html import render_html
from warmup.app.clock import SystemClock
from warmup.app.report import gather_report
from warmup.cli.common import EXIT_RUNTIME, config_from, fail, run_async
from warmup.config import Config

__all__ = ["report", "write_report"]


async def write_report(
    store: SQLStore,
    config: Config,
    path: Path,
    *,
    now: datetime,
    title: str = "warmup report",
) -> int:
    """Read the store, render the report and write it to ``path``; its size."""
    data = await gather_report(
        store,
        schedules=config.schedules,
        tz=config.tz,
        now=now,
        auth_min_pass_rate=config.settings.dmarc.min_pass_rate,
    )
    page = await asyncio.to_thread(render_html, data, title=title)
    encoded = page.encode()
    try:
        await asyncio.to_thread(write_private, path, encoded)  # 0600: addresses
    except OSError as exc:
        fail(f"cannot write the report to {str(path)!r}: {exc.strerror}", EXIT_RUNTIME)
    return len(encoded)


async def _report(config: Config, path: Path, title: str) -> int:
    store = await SQLStore.open(config.settings.database)
    try:
        return await write_report(
            store, config, path, now=SystemClock().now(), title=title
        )
    finally:
        await store.close()


@click.command()
@click.option(
    "--html",
    "html_path",
    required=True,
    metavar="OUT.html",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report to this file.",
)
@click.option("--title", default="warmup report", show_default=True)
@click.pass_context
def report(ctx: click.Context, html_path: str, title: str) -> None:
    """Write an HTML report: plan against actual sends per lane per day, bounce,
    deferral and complaint rates with the schedule's limits, the lane events on a
    timeline, and a summary per ISP.

    The file is self-contained (the plotting library is inside it): it opens in a
    browser without a network.
    """
    config = config_from(ctx)
    path = Path(html_path)
    size = run_async(_report(config, path, title))
    click.echo(f"report: {path} ({size / 1e6:.1f} MB)")
