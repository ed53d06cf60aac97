"""Composition of the event consumers of `warmup run`: the accounting log and
the webhooks, each shipped by its own task (see warmup.app.shipping)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from warmup.adapters.db.store import SQLStore
from warmup.adapters.event_log import EventLog
from warmup.adapters.webhook import Webhook
from warmup.app.forward import BounceForwarder
from warmup.app.ports import Clock
from warmup.app.shipping import EventSink, Shipper
from warmup.config import Config

__all__ = [
    "build_sinks",
    "consumer_names",
    "consumer_retries",
    "shipping",
    "webhook_secrets",
]

logger = logging.getLogger(__name__)


def webhook_secrets(config: Config) -> list[bytes | None]:
    """Each webhook's signing key; an empty key for one whose ``secret_env`` is
    not set: that webhook is not shipped to (unsigned would be worse), loudly,
    and its events wait in the outbox until a restart with the key."""
    secrets: list[bytes | None] = []
    for index, hook in enumerate(config.settings.webhooks):
        if hook.secret_env is None:
            secrets.append(None)
            continue
        value = os.environ.get(hook.secret_env, "")
        if not value:
            logger.error(
                "webhooks[%d]: $%s (secret_env) is not set: not sending events to "
                "%s; they wait in the outbox",
                index,
                hook.secret_env,
                Webhook.name_for(hook.url),
            )
        secrets.append(value.encode())
    return secrets


def consumer_names(config: Config) -> list[str]:
    """The names of the configured consumers (their cursors in the store)."""
    names = [Webhook.name_for(hook.url) for hook in config.settings.webhooks]
    log = config.settings.events.log
    relay = config.settings.relay
    if relay.enabled and relay.forward_bounces:  # warmup.app.forward
        names.append(BounceForwarder.name)
    return ([EventLog.name_for(log)] if log is not None else []) + names


def consumer_retries(config: Config) -> list[tuple[str, timedelta]]:
    """Each configured consumer and how long it retries a batch before giving it
    up (the events retention keeps what one has still to ship until then)."""
    hooks = [
        (Webhook.name_for(hook.url), hook.retry_for)
        for hook in config.settings.webhooks
    ]
    log = config.settings.events.log
    logs = [(EventLog.name_for(log), EventLog.retry_for)] if log is not None else []
    relay = config.settings.relay
    if relay.enabled and relay.forward_bounces:  # warmup.app.forward
        hooks.append((BounceForwarder.name, BounceForwarder.retry_for))
    return logs + hooks


def build_sinks(config: Config) -> tuple[list[EventSink], list[Webhook]]:
    """The configured consumers: the accounting log, then each webhook."""
    sinks: list[EventSink] = []
    if config.settings.events.log is not None:
        sinks.append(EventLog(config.settings.events))
    hooks = [
        Webhook(hook, secret)
        for hook, secret in zip(
            config.settings.webhooks, webhook_secrets(config), strict=True
        )
        if secret != b""  # its key is missing: said at start, not shipped
    ]
    return [*sinks, *hooks], hooks


@asynccontextmanager
async def shipping(
    config: Config, *, store: SQLStore, clock: Clock, holder: str = ""
) -> AsyncIterator[Shipper]:
    """Ship events to every consumer while the block runs; ``holder`` (this
    process, node:pid): one shipper per consumer across the nodes."""
    sinks, hooks = build_sinks(config)
    shipper = Shipper(store, sinks, clock, holder=holder)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(shipper.run(sink, stop)) for sink in sinks]
    for sink in sinks:
        logger.info("shipping outcome events to %s", sink.name)
    try:
        yield shipper
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for hook in hooks:
            await hook.close()
