"""``warmup relay cert`` (the users: warmup.cli.relay_users_cmds), and the
relay listener of ``warmup run``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import click

from warmup.adapters.db.forwarding import SQLForwarding
from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.store import SQLStore
from warmup.adapters.relay import RelayServer, server_tls_context
from warmup.adapters.relay_users import UserFile
from warmup.adapters.tls_cert import write_self_signed
from warmup.app.clock import SystemClock
from warmup.app.forward import BounceForwarder
from warmup.app.ports import Clock
from warmup.app.relay import BounceSink, RelayIntake
from warmup.app.shipping import Shipper
from warmup.cli.common import EXIT_CONFIG, config_from, fail
from warmup.cli.relay_users_cmds import adduser, users
from warmup.config import Config
from warmup.core.errors import InputError
from warmup.core.event import after_success
from warmup.core.recipients.routing import domain_index

__all__ = [
    "bounce_forwarder",
    "forwarding",
    "own_domains",
    "relay",
    "relaying",
    "start_cursor",
]

logger = logging.getLogger(__name__)


@click.group()
def relay() -> None:
    """The SMTP relay campaign tools submit to (started by `warmup run`)."""


@relay.command()
@click.option("--cert", "cert_path", metavar="PATH", help="Default: relay.tls_cert.")
@click.option("--key", "key_path", metavar="PATH", help="Default: relay.tls_key.")
@click.option(
    "--hostname",
    "hostnames",
    multiple=True,
    metavar="NAME",
    help="Name or IP the clients connect to (repeatable; default: localhost, "
    "127.0.0.1 and this host's name).",
)
@click.option("--days", default=365, show_default=True, type=click.IntRange(1))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_context
def cert(
    ctx: click.Context,
    cert_path: str | None,
    key_path: str | None,
    hostnames: tuple[str, ...],
    days: int,
    force: bool,
) -> None:
    """Make a self-signed certificate and key for STARTTLS (for trying it out)."""
    settings = config_from(ctx).settings.relay
    certificate = Path(cert_path or settings.tls_cert or "relay-cert.pem")
    key = Path(key_path or settings.tls_key or "relay-key.pem")
    for path in (certificate, key):
        if path.exists() and not force:
            fail(f"{path} exists (--force replaces it)", EXIT_CONFIG)
    names = list(hostnames) or ["localhost", "127.0.0.1", socket.gethostname()]
    try:
        fingerprint = write_self_signed(
            certificate, key, hostnames=names, days=days, now=SystemClock().now()
        )
    except OSError as exc:
        fail(f"cannot write the certificate: {exc}")
    click.echo(f"wrote {certificate} and {key} (SHA-256 {fingerprint})")
    click.echo(
        f"config.yaml:\n  relay:\n    tls_cert: {certificate}\n    tls_key: {key}"
    )


relay.add_command(adduser)
relay.add_command(users)


@asynccontextmanager
async def relaying(
    config: Config,
    *,
    store: SQLStore,
    clock: Clock,
    bounce_sink: BounceSink | None = None,
    on_queued: Callable[[], None] | None = None,
) -> AsyncIterator[RelayServer | None]:
    """The relay listener while the block runs, when ``relay.enabled``.

    ``bounce_sink`` receives mail for the bounce domain (without it that mail is
    refused); ``on_queued`` is called after each commit that queued mail.
    InputError when the certificate, the users file or the port cannot be used.
    """
    settings = config.settings.relay
    if not settings.enabled:
        yield None
        return
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise InputError("relay", "set both tls_cert and tls_key, or neither")
    tls = None
    if settings.tls_cert and settings.tls_key:
        tls = server_tls_context(settings.tls_cert, settings.tls_key)
    users = UserFile(settings.users_file) if settings.users_file else None
    if users is not None:
        await asyncio.to_thread(users.users)  # a bad file stops the start
    hostname = socket.gethostname()
    submissions = SQLRelayStore(store, durable=settings.fsync)
    intake = RelayIntake(
        submissions,
        clock=clock,
        settings=settings,
        bounce_domain=config.settings.bounces.domain,
        hostname=hostname,
        isp_of=domain_index(config.schedules.values()).get,
        bounce_sink=bounce_sink,
        on_queued=on_queued,
        priority_of=None if users is None else users.priority,
    )
    server = RelayServer(
        settings=settings,
        intake=intake,
        clock=clock,
        hostname=hostname,
        users=users,
        tls_context=tls,
    )
    # aiosmtpd logs every command at INFO (recipients included): keep warnings.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        await server.start()
    except OSError as exc:
        submissions.close()
        where = f"{settings.listen_host}:{settings.listen_port}"
        raise InputError("relay.listen", f"cannot listen on {where}: {exc}") from None
    try:
        yield server
    finally:
        await server.stop()
        submissions.close()


def own_domains(config: Config) -> list[str]:
    """Domains that are ours: no delivery report ever goes there (the bounce
    and VERP domain, the IPs' HELO names, this host's name). Signing domains
    are not: they are often the client's own, where its bounce mailbox is."""
    names = [config.settings.bounces.domain, socket.getfqdn(), socket.gethostname()]
    names.extend(ip.helo for ip in config.settings.ips)
    return [name.lower() for name in dict.fromkeys(names) if "." in name]


def bounce_forwarder(
    config: Config,
    store: SQLStore,
    on_queued: Callable[[], None] | None = None,
    *,
    submissions: SQLRelayStore,
) -> BounceForwarder:
    """The relay.forward_bounces consumer of the events outbox; it queues its
    reports through ``submissions`` (the caller closes it)."""
    settings = config.settings
    reporting = settings.ips[0].helo if settings.ips else None
    return BounceForwarder(
        SQLForwarding(store),
        submissions,
        own_domains=own_domains(config),
        reporting_mta=reporting or socket.getfqdn(),
        from_domain=settings.bounces.domain,
        isp_of=domain_index(config.schedules.values()).get,
        on_queued=on_queued,
    )


async def start_cursor(store: SQLStore, forwarder: BounceForwarder) -> None:
    """A new forwarder starts at the newest event: turning forward_bounces on
    does not report on the past."""
    cursor = await store.cursor(forwarder.name)
    if cursor.last_id == 0 and cursor.failing_since is None:
        await store.save_cursor(after_success(cursor, await store.last_event_id()))


@asynccontextmanager
async def forwarding(
    config: Config,
    *,
    store: SQLStore,
    clock: Clock,
    on_queued: Callable[[], None] | None = None,
    holder: str = "",
) -> AsyncIterator[BounceForwarder | None]:
    """relay.forward_bounces: delivery reports queued from the events outbox
    while the block runs, by its own task and cursor."""
    settings = config.settings.relay
    if not (settings.enabled and settings.forward_bounces):
        yield None
        return
    submissions = SQLRelayStore(store, durable=settings.fsync)
    try:
        forwarder = bounce_forwarder(config, store, on_queued, submissions=submissions)
        await start_cursor(store, forwarder)
        shipper = Shipper(store, [forwarder], clock, holder=holder)
        stop = asyncio.Event()
        task = asyncio.create_task(shipper.run(forwarder, stop))
        logger.info("relay: forwarding bounces of relayed mail to their senders")
        try:
            yield forwarder
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        submissions.close()
