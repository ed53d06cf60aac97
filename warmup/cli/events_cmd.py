"""``warmup events``: the outcome events (see warmup.core.event)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import click
from rich.markup import escape

from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.store_rows import EventRow
from warmup.cli.common import (
    EXIT_CONFIG,
    config_from,
    echo_json,
    fail,
    out_console,
    run_async,
)
from warmup.config import Config
from warmup.core.duration import parse_duration
from warmup.core.event import EventType
from warmup.core.lanes.control import parse_when

__all__ = ["event_json", "events"]

_FOLLOW_EVERY = 1.0  # seconds between looks at the outbox with --follow

JSON_HELP = """
\b
--json prints one object per event, oldest first, with
  id          stable and unique (the outbox row number; webhooks send it too)
  type        delivered | deferred | bounced | expired | complained |
              unsubscribed | suppressed | cancelled
  at          when it happened (ISO 8601, UTC)
  campaign, recipient, message_id (the client's Message-ID, relayed mail)
  ip, isp     the lane, for sends
  reply, status, reason, source
"""


def event_json(event: EventRow) -> dict[str, Any]:
    """The event's JSON object: its fields in :class:`EventRow` order (the
    order of ``EVENT_FIELDS``), the instant in ISO 8601."""
    return {**event, "at": event["at"].isoformat()}


def _line(event: EventRow) -> str:
    at = event["at"].strftime("%Y-%m-%d %H:%M:%S")
    where = f" {event['ip']}/{event['isp']}" if event["ip"] else ""
    detail = event["reply"] or event["source"] or ""
    return (
        f"{event['id']:>6} {at} {event['type']:<12} {event['recipient']} "
        f"{escape('[' + (event['campaign'] or '') + ']')}{where} "
        f"{escape(detail[:100])}"
    )


async def _show(
    config: Config,
    since: datetime | None,
    types: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    store = await SQLStore.open(config.settings.database)
    console = out_console()
    try:
        after = 0
        while True:
            batch = await store.read_events(after=after, since=since, types=types)
            for event in batch:
                if as_json:
                    echo_json(event_json(event))
                else:
                    console.print(_line(event), highlight=False)
            if batch:
                after = batch[-1]["id"]
                continue
            if not follow:
                return
            await asyncio.sleep(_FOLLOW_EVERY)  # a CLI waiting for news
    finally:
        await store.close()


@click.command(epilog=JSON_HELP)
@click.option(
    "--since", metavar="WHEN", help="Only from then: 24h (ago), or a date-time."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice([t.value for t in EventType]),
    help="Only events of this type (repeatable).",
)
@click.option("--follow", is_flag=True, help="Keep printing new events as they come.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@click.pass_context
def events(
    ctx: click.Context,
    since: str | None,
    types: tuple[str, ...],
    follow: bool,
    as_json: bool,
) -> None:
    """Recipient outcomes, oldest first: delivered, deferred, bounced, expired,
    complained, unsubscribed, suppressed, cancelled."""
    config = config_from(ctx)
    start = None
    if since is not None:
        now = SystemClock().now()
        try:  # a duration counts back from now; a date-time is taken as written
            start = now - parse_duration(since)
        except ValueError:
            try:
                start = parse_when(since, now=now, tz=config.tz)
            except ValueError as exc:
                fail(f"--since: {exc}", EXIT_CONFIG)
    try:
        run_async(_show(config, start, types, follow, as_json))
    except KeyboardInterrupt:
        return
