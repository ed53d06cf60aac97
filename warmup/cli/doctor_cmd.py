"""``warmup doctor``: is each IP and domain set up to be warmed?"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from warmup.adapters.dkim_keys import DKIMKeyError, load_key, public_value
from warmup.adapters.dns import DNSRecords, make_resolver
from warmup.app.doctor import DKIMPublicKey, DoctorSetup, diagnose
from warmup.cli.common import (
    EXIT_CONFIG,
    EXIT_RUNTIME,
    config_from,
    echo_json,
    fail,
    out_console,
    run_async,
)
from warmup.config import Config
from warmup.core.auth.doctor import Check

__all__ = ["doctor"]

_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _public_keys(config: Config) -> list[DKIMPublicKey]:
    keys = []
    for index, spec in enumerate(config.settings.dkim.keys):
        try:
            kind, public = public_value(load_key(Path(spec.key)))
        except DKIMKeyError as exc:
            fail(f"{config.path}: dkim.keys[{index}].key: {exc}", EXIT_CONFIG)
        keys.append(
            DKIMPublicKey(
                domain=spec.domain, selector=spec.selector, kind=kind, public=public
            )
        )
    return keys


async def _diagnose(config: Config) -> list[Check]:
    settings = config.settings
    resolver = make_resolver(settings.dns.nameservers, settings.delivery.timeouts.dns)
    ours = tuple(ip.address for ip in settings.ips)
    if settings.relay.enabled:
        ours += (settings.relay.listen_host,)
    setup = DoctorSetup(
        ips=settings.ips,
        bounce_domain=settings.bounces.domain,
        keys=_public_keys(config),
        ours=ours,
    )
    return await diagnose(setup, DNSRecords(resolver))


def _table(checks: list[Check]) -> Table:
    table = Table(title="warmup doctor")
    for name in ("ip", "domain", "check", "status", "detail"):
        table.add_column(name, overflow="fold")
    for c in checks:
        status = f"[{_STYLES[c.status]}]{c.status}[/]"
        table.add_row(c.ip, c.domain, c.check, status, c.detail)
    return table


def _print(checks: list[Check]) -> None:
    """The table, then one line per fix (whole, to copy from)."""
    console = out_console()
    console.print(_table(checks))
    for c in checks:
        if c.status != "ok":
            where = " ".join(part for part in (c.ip, c.domain, c.check) if part)
            console.print(
                f"[{_STYLES[c.status]}]{c.status}[/] {where}: {c.fix}",
                soft_wrap=True,
                highlight=False,
            )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the DNS set-up of every source IP and signing and bounce domain:
    PTR, forward-confirmed PTR, HELO, SPF of the bounce domain, DKIM records,
    DMARC, the bounce domain's MX. Exit 1 when a check fails.

    \b
    --json prints one object per check:
      ip, domain   ("" when the check is about the other alone)
      check        ptr | ptr_forward | helo | spf | dkim | dmarc | mx
      status       ok | warn | fail
      detail, fix  what was found; what to change ("" when ok)
    """
    config = config_from(ctx)
    checks = run_async(_diagnose(config))
    if as_json:
        for check in checks:
            echo_json(
                {
                    "ip": check.ip,
                    "domain": check.domain,
                    "check": check.check,
                    "status": check.status,
                    "detail": check.detail,
                    "fix": check.fix,
                }
            )
    else:
        _print(checks)
    if any(check.status == "fail" for check in checks):
        ctx.exit(EXIT_RUNTIME)
