"""``warmup relay cert | adduser``, and the relay listener of ``warmup run``."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.db.submission import SQLSubmissions
from warmup.adapters.relay import RelayServer, server_tls_context
from warmup.adapters.relay_users import UserFile, add_user
from warmup.adapters.tls_cert import write_self_signed
from warmup.app.clock import SystemClock
from warmup.app.ports import Clock
from warmup.app.submit import BounceSink, SubmissionIntake
from warmup.cli.common import EXIT_CONFIG, config_from, fail
from warmup.config import Config
from warmup.core.errors import InputError

__all__ = ["domain_index", "relay", "relaying"]

logger = logging.getLogger(__name__)
MIN_PASSWORD = 8
DEFAULT_USERS_FILE = "relay-users"


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


@relay.command()
@click.argument("name")
@click.option(
    "--file",
    "users_path",
    metavar="PATH",
    help="Default: relay.users_file, else ./relay-users.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input."
)
@click.pass_context
def adduser(
    ctx: click.Context, name: str, users_path: str | None, password_stdin: bool
) -> None:
    """Add NAME to the relay's users file (or set a new password).

    The password is asked twice (or read from stdin); the file keeps a salted
    scrypt hash. NAME is also the campaign of what NAME submits unless the
    message names one in its campaign header.
    """
    configured = config_from(ctx).settings.relay.users_file
    path = users_path or configured or DEFAULT_USERS_FILE
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
    if len(password) < MIN_PASSWORD:
        fail(f"the password needs at least {MIN_PASSWORD} characters", EXIT_CONFIG)
    try:
        new = add_user(path, name, password.encode("utf-8"))
    except InputError as exc:
        fail(str(exc), EXIT_CONFIG)
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")
    click.echo(f"{'added' if new else 'updated'} {name} in {path}")
    if configured is None:
        click.echo(f"config.yaml:\n  relay:\n    users_file: {path}")


def domain_index(config: Config) -> dict[str, str]:
    """Recipient domain -> ISP, from the schedules' ``match.domains``."""
    return {
        domain: schedule.isp
        for schedule in config.schedules.values()
        for domain in schedule.domains
    }


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
    submissions = SQLSubmissions(store, durable=settings.fsync)
    intake = SubmissionIntake(
        submissions,
        clock=clock,
        settings=settings,
        bounce_domain=config.settings.bounces.domain,
        hostname=hostname,
        isp_of=domain_index(config).get,
        bounce_sink=bounce_sink,
        on_queued=on_queued,
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
