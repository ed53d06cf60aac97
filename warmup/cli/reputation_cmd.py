"""``warmup reputation fetch``: read the ISPs' reputation data now."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from warmup.adapters.db.store import SQLStore
from warmup.adapters.reputation_feeds import HTTPReputationFeeds
from warmup.app.clock import SystemClock
from warmup.app.reputation import FetchResult, fetch_reputation
from warmup.cli.common import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    config_from,
    echo_json,
    fail,
    run_async,
)
from warmup.cli.status_reputation import reputation_records, reputation_view
from warmup.config import Config

__all__ = ["reputation"]


@click.group()
def reputation() -> None:
    """The ISPs' own reputation data: Google Postmaster Tools and Microsoft SNDS."""


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def fetch(ctx: click.Context, as_json: bool) -> None:
    """Fetch Google Postmaster Tools (reputation.google_postmaster) and
    Microsoft SNDS (reputation.snds) now, store the figures and print them:
    the table `warmup status` shows, or with --json one object per figure
    (source postmaster|snds, domain, ip, day, spam_rate_pct, domain_reputation,
    ip_reputation, spf_pct, dkim_pct, dmarc_pct, filter_result,
    complaint_rate_pct, trap_hits, action pause|hold|null, causes) and one
    {"source": "error", "feed", "error"} per feed that could not be read.
    `warmup run` does the same every day. Exit code 1 if a feed could not be
    read.
    """
    config = config_from(ctx)
    if not config.settings.reputation.enabled:
        fail(
            "nothing to fetch: set reputation.google_postmaster.credentials_file "
            "(and domains) or reputation.snds.key_env",
            EXIT_CONFIG,
        )
    result = run_async(_fetch(config))
    ips = [ip.address for ip in config.settings.ips]
    records = reputation_records(result.postmaster, result.snds, ips)
    errors = [
        {"source": "error", "feed": e.source, "error": e.detail} for e in result.errors
    ]
    if as_json:
        for record in [*records, *errors]:
            echo_json(record)
    else:
        console = Console()
        console.print(*reputation_view(console, records))
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
    if result.errors:
        sys.exit(EXIT_RUNTIME)


async def _fetch(config: Config) -> FetchResult:
    store = await SQLStore.open(config.settings.database)
    try:
        settings = config.settings.reputation
        feeds = HTTPReputationFeeds(settings)
        return await fetch_reputation(feeds, store, settings, SystemClock().now())
    finally:
        await store.close()


reputation.add_command(fetch)
