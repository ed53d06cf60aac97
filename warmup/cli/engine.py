"""Composition of the engine from a Config: shared by `warmup run` and `warmup demo`."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from datetime import timedelta

from warmup.adapters.db.store import SQLStore
from warmup.adapters.dmarc_report import reports_in_mail
from warmup.adapters.process import LocalProcesses
from warmup.app.dispatcher import Dispatcher
from warmup.app.dmarc import DMARCIntake
from warmup.app.ingest import MailHandler
from warmup.app.ports import Clock, Resolver, Sender
from warmup.app.settings import EngineSettings
from warmup.app.sign import MessageSigner
from warmup.app.unsubscribe import Unsubscriber
from warmup.cli.common import EXIT_CONFIG, fail
from warmup.cli.dkim_cmds import signing_keys
from warmup.config import Config
from warmup.core.auth.dmarc import DMARCReport
from warmup.core.lanes.schedule import Schedule
from warmup.core.settings import SourceIP

__all__ = [
    "build_dispatcher",
    "build_unsubscriber",
    "mail_handlers",
    "node_name",
    "owned_ips",
    "verp_secret",
]


def verp_secret(config: Config, command: str) -> bytes:
    """The VERP signing key from the environment variable the config names."""
    name = config.settings.bounces.verp_secret_env
    secret = os.environ.get(name, "")
    if not secret:
        fail(
            f"set the VERP secret in ${name} (bounces.verp_secret_env) "
            f"before `{command}`",
            EXIT_CONFIG,
        )
    return secret.encode()


def node_name(config: Config) -> str:
    return config.settings.node or socket.gethostname()


def owned_ips(config: Config, node: str) -> tuple[SourceIP, ...]:
    """The IPs this node sends from: those owned by it, or by no node in particular."""
    return tuple(ip for ip in config.settings.ips if ip.host in (None, node))


def build_dispatcher(
    config: Config,
    *,
    store: SQLStore,
    sender: Sender,
    resolver: Resolver,
    clock: Clock,
    secret: bytes,
    ips: Sequence[SourceIP] | None = None,
    schedules: Mapping[str, Schedule] | None = None,
    maintenance_every: timedelta = timedelta(minutes=1),
    idle_wake: timedelta = timedelta(minutes=1),
    catch_up: int = 1,
    burst: timedelta = timedelta(0),
    burst_sends: int = 16,
    controls_every: timedelta | None = None,
) -> Dispatcher:
    node = node_name(config)
    settings = EngineSettings(
        schedules=schedules or config.schedules,
        ips=tuple(ips if ips is not None else owned_ips(config, node)),
        delivery=config.settings.delivery,
        return_path=config.settings.bounces.return_path,
        verp_secret=secret,
        tz=config.tz,
        node=f"{node}:{os.getpid()}",
        maintenance_every=maintenance_every,
        idle_wake=idle_wake,
        catch_up=catch_up,
        burst=burst,
        burst_sends=burst_sends,
        **({"controls_every": controls_every} if controls_every else {}),
        pool=tuple(config.settings.ips),
        unsubscribe=config.settings.unsubscribe,
        dmarc=config.settings.dmarc,
        reputation=config.settings.reputation,
        dns=config.settings.dns,
    )
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=resolver,
        clock=clock,
        settings=settings,
        processes=LocalProcesses(),
        signer=MessageSigner(
            signing_keys(config), unsigned=config.settings.dkim.unsigned
        ),
    )


def build_unsubscriber(
    config: Config, *, store: SQLStore, clock: Clock, secret: bytes
) -> Unsubscriber:
    return Unsubscriber(
        store,
        clock=clock,
        secret=secret,
        mail_domain=config.settings.bounces.domain,
        scope=config.settings.unsubscribe.scope,
    )


def mail_handlers(
    config: Config, *, store: SQLStore, clock: Clock, secret: bytes
) -> list[MailHandler]:
    """What else arrives with bounces, tried first: unsubscribes by mail and
    DMARC aggregate reports."""
    limit = config.settings.dmarc.max_report_bytes

    def read_mail(data: bytes, source: str) -> list[DMARCReport]:
        return reports_in_mail(data, source=source, limit=limit)

    return [
        build_unsubscriber(config, store=store, clock=clock, secret=secret),
        DMARCIntake(store, clock=clock, read_mail=read_mail),
    ]
