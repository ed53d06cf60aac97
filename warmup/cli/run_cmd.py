"""``warmup run``: the daemon."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import time, timedelta

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.dns import DNSResolver
from warmup.adapters.mailboxes import MaildirInbox
from warmup.adapters.metrics import exporting
from warmup.adapters.reputation_feeds import HTTPReputationFeeds
from warmup.adapters.scheduler import CalendarJobs
from warmup.adapters.smtp import SMTPSender
from warmup.adapters.unsubscribe_http import serving_unsubscribe
from warmup.app.clock import SystemClock
from warmup.app.domains import recheck_dns_suppressions
from warmup.app.ingest import BounceIntake
from warmup.app.ports import Clock
from warmup.app.reputation import fetch_reputation
from warmup.app.runner import run_until_stopped
from warmup.cli.common import EXIT_CONFIG, config_from, fail, run_async
from warmup.cli.engine import (
    build_dispatcher,
    build_unsubscriber,
    mail_handlers,
    node_name,
    owned_ips,
    verp_secret,
)
from warmup.cli.outbound import consumer_names, consumer_retries, shipping
from warmup.cli.relay_cmds import forwarding, relaying
from warmup.config import Config
from warmup.core.bounces.late import Reporter

__all__ = ["run"]

logger = logging.getLogger(__name__)
#: How often DNS suppressions are looked at; each is looked up once it is
#: ``dns.recheck_after`` old.
DNS_RECHECK_EVERY = timedelta(days=1)
# How long, and for how many sends, one tick may keep a lane sending
# (EngineSettings.burst, burst_sends): a fast lane sends many due slots per tick
# and per record instead of one. RUN_BURST_SENDS per lane is the most a crash
# can leave sent but unrecorded (repeated after it); RUN_BURST bounds the
# latency of a pause or a poke. At an ISP's real round trips (~100 ms a send) a
# tick is one or two sends per lane, as before.
RUN_BURST = timedelta(milliseconds=200)
RUN_BURST_SENDS = 16
#: When (local time) the ISPs' reputation data is fetched each day: Postmaster
#: Tools and SNDS publish the previous day's figures during the night (UTC).
REPUTATION_FETCH_AT = time(7, 0)


@click.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: dispatcher and calendar jobs; stops cleanly on SIGTERM/SIGINT.

    Sends from the configured IPs whose `host` is this node (or unset), along
    each ISP's ramp. Needs the VERP secret in the environment variable named by
    bounces.verp_secret_env.
    """
    config = config_from(ctx)
    secret = verp_secret(config, "warmup run")
    node = node_name(config)
    if not owned_ips(config, node):
        fail(f"no source IPs for node {node!r}: set `node:` or ips[].host", EXIT_CONFIG)
    run_async(_run(config, secret))


async def _run(config: Config, secret: bytes) -> None:
    clock = SystemClock()
    store = await SQLStore.open(config.settings.database)
    delivery = config.settings.delivery
    nameservers = config.settings.dns.nameservers
    resolver = DNSResolver(
        timeout=delivery.timeouts.dns, now=clock.now, nameservers=nameservers
    )
    sender = SMTPSender(
        timeouts=delivery.timeouts,
        tls=delivery.tls,
        connections_per_lane=delivery.connections_per_lane,
        messages_per_connection=delivery.messages_per_connection,
        # MX hosts' addresses from dns.nameservers too, when it names any.
        address_of=resolver.address if nameservers else None,
    )
    dispatcher = build_dispatcher(
        config,
        store=store,
        sender=sender,
        resolver=resolver,
        clock=clock,
        secret=secret,
        burst=RUN_BURST,
        burst_sends=RUN_BURST_SENDS,
    )
    jobs = CalendarJobs(
        tz=config.tz,
        schedules=config.schedules.values(),
        beat=dispatcher.settings.maintenance_every,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info(
        "warmup run: node %s, IPs %s, database %s",
        dispatcher.settings.node,
        ", ".join(ip.address for ip in dispatcher.settings.ips),
        store.engine.url.render_as_string(hide_password=True),
    )
    bounces = BounceIntake.configured(
        store,
        clock=clock,
        settings=config.settings.bounces,
        retry=config.settings.delivery.retry,
        secret=secret,
        handlers=mail_handlers(config, store=store, clock=clock, secret=secret),
    )
    unsubscriber = build_unsubscriber(config, store=store, clock=clock, secret=secret)
    _poll_bounce_mailbox(config, bounces, jobs)
    _fetch_reputation_daily(config, store, clock, jobs)
    jobs.every(
        "dns-recheck",
        DNS_RECHECK_EVERY,
        lambda: recheck_dns_suppressions(
            store,
            resolver,
            now=clock.now(),
            recheck_after=config.settings.dns.recheck_after,
            routes=config.settings.delivery.routes,
        ),
    )
    _prune(config, store, clock, jobs)

    async def bounce_sink(data: bytes, recipient: str, reporter: Reporter) -> None:
        await bounces.ingest(
            data, source="relay", envelope_to=(recipient,), reporter=reporter
        )

    def queued() -> None:
        dispatcher.poke()
        jobs.wake.set()

    jobs.start()
    try:
        owned = [ip.address for ip in dispatcher.settings.ips]
        metrics = config.settings.metrics
        async with (
            exporting(
                metrics,
                store=store,
                clock=clock,
                ips=owned,
                consumers=consumer_names(config),
                schedules=config.schedules,
            ) as exporter,
            relaying(
                config,
                store=store,
                clock=clock,
                bounce_sink=bounce_sink,
                on_queued=queued,
            ) as relay,
            forwarding(
                config,
                store=store,
                clock=clock,
                on_queued=queued,
                holder=dispatcher.settings.node,
            ),
            serving_unsubscribe(config.settings.unsubscribe, unsubscriber),
            shipping(config, store=store, clock=clock, holder=dispatcher.settings.node),
        ):
            if exporter is not None:
                exporter.count_store_failures(
                    lambda: (
                        dispatcher.stats.record_failures
                        + dispatcher.stats.lane_failures
                        + (relay.store_failures if relay is not None else 0)
                    )
                )
                exporter.count_relay(lambda: relay.counts if relay else None)
            await run_until_stopped(dispatcher, stop, jobs.wake)
    finally:
        jobs.shutdown()
        await sender.close()
        await store.close()
        logger.info("warmup run: stopped after %d sends", dispatcher.stats.sent)


def _prune(config: Config, store: SQLStore, clock: Clock, jobs: CalendarJobs) -> None:
    """retention: old relayed bodies emptied, old attempts and shipped outcome
    events deleted, in batches."""
    settings = config.settings.retention
    consumers = consumer_retries(config)

    async def prune() -> None:
        bodies, attempts = await store.prune(settings, clock.now())
        events = await store.prune_events(settings, consumers, clock.now())
        if bodies or attempts or events:
            logger.info(
                "retention: emptied %d message bodies, deleted %d attempts "
                "and %d outcome events",
                bodies,
                attempts,
                events,
            )

    jobs.every("retention", settings.every, prune)


def _poll_bounce_mailbox(
    config: Config, intake: BounceIntake, jobs: CalendarJobs
) -> None:
    """bounces.maildir: ingest what arrives there every bounces.poll_every."""
    settings = config.settings.bounces
    if settings.maildir is None:
        return
    inbox = MaildirInbox(settings.maildir)
    jobs.every("bounce-mailbox", settings.poll_every, lambda: intake.drain(inbox))
    logger.info(
        "polling the bounce mailbox %s every %s", settings.maildir, settings.poll_every
    )


def _fetch_reputation_daily(
    config: Config, store: SQLStore, clock: Clock, jobs: CalendarJobs
) -> None:
    """reputation: fetch Postmaster Tools and SNDS every day (failures are
    logged by fetch_reputation, one line each; the daemon goes on)."""
    settings = config.settings.reputation
    if not settings.enabled:
        return
    feeds = HTTPReputationFeeds(settings)
    jobs.daily(
        "reputation-fetch",
        REPUTATION_FETCH_AT,
        lambda: fetch_reputation(feeds, store, settings, clock.now()),
    )
    logger.info("fetching reputation data daily at %s", REPUTATION_FETCH_AT)
