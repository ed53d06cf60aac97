"""The operator's controls: ``warmup pause | resume`` and ``warmup campaign …``.

Each act is written to the store; running daemons apply it within ~2 s (see
warmup.app.controls). Nothing here suppresses anyone.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.store_rows import CampaignRow
from warmup.cli.common import (
    EXIT_CONFIG,
    config_from,
    echo_json,
    fail,
    out_console,
    run_async,
)
from warmup.config import Config
from warmup.core.lanes.control import Control, ControlAction, parse_when

__all__ = ["actor", "campaign", "pause", "resume", "with_store"]

T = TypeVar("T")
_COUNTS = ("queued", "sending", "delivered", "bounced", "expired", "suppressed")
_HEADS = ("queued", "sending", "deliv.", "bounced", "expired", "suppr.")


def actor() -> str:
    """Who acts: the OS user at this host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def with_store(config: Config, work: Callable[[SQLStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await SQLStore.open(config.settings.database)
        try:
            return await work(store)
        finally:
            await store.close()

    return run_async(go())


def _scope(config: Config, ip: str | None, isp: str | None) -> None:
    """Exit 2 unless the scope names something configured."""
    if ip is None and isp is None:
        fail("name the lanes: --ip IP, --isp ISP, or both", EXIT_CONFIG)
    known_ips = {source.address for source in config.settings.ips}
    if ip is not None and ip not in known_ips:
        fail(f"--ip {ip!r} is not one of the configured ips", EXIT_CONFIG)
    if isp is not None and isp not in config.schedules:
        names = ", ".join(sorted(config.schedules))
        fail(f"--isp {isp!r} has no schedule (known: {names})", EXIT_CONFIG)


def _lanes_text(control: Control) -> str:
    return f"{control.ip or 'every IP'} / {control.isp or 'every ISP'}"


def _act(
    ctx: click.Context,
    action: ControlAction,
    *,
    ip: str | None,
    isp: str | None,
    until_text: str | None,
    reason: str,
    as_json: bool,
) -> None:
    config = config_from(ctx)
    _scope(config, ip, isp)
    now = SystemClock().now()
    until = None
    if until_text is not None:
        try:
            until = parse_when(until_text, now=now, tz=config.tz)
        except ValueError as exc:
            fail(f"--until: {exc}", EXIT_CONFIG)
        if until <= now:
            fail(f"--until {until_text!r} is already past", EXIT_CONFIG)
    control = with_store(
        config,
        lambda store: store.add_control(
            action=action,
            actor=actor(),
            now=now,
            reason=reason,
            ip=ip,
            isp=isp,
            until=until,
        ),
    )
    if as_json:
        echo_json(_control_json(control))
        return
    verb = "paused" if action is ControlAction.pause else "resumed"
    when = f" until {until.isoformat()}" if until else ""
    out_console().print(
        f"{verb} {_lanes_text(control)}{when} (control {control.id}); "
        "running daemons apply it within a few seconds"
    )


def _control_json(control: Control) -> dict[str, Any]:
    return {
        "id": control.id,
        "action": control.action.value,
        "ip": control.ip,
        "isp": control.isp,
        "until": control.until.isoformat() if control.until else None,
        "reason": control.reason,
        "actor": control.actor,
        "at": control.at.isoformat(),
    }


_IP = click.option("--ip", metavar="IP", help="A source IP (default: every IP).")
_ISP = click.option("--isp", metavar="ISP", help="An ISP (default: every ISP).")
_REASON = click.option("--reason", default="", help="Why (kept with the act).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the act as JSON.")


@click.command()
@_IP
@_ISP
@click.option(
    "--until",
    "until_text",
    metavar="WHEN",
    help="Resume by itself then: 2h, 30m, or 2030-01-02T08:00 (config timezone).",
)
@_REASON
@_JSON
@click.pass_context
def pause(
    ctx: click.Context,
    ip: str | None,
    isp: str | None,
    until_text: str | None,
    reason: str,
    as_json: bool,
) -> None:
    """Stop sending on lanes (an IP, an ISP, or one IP at one ISP).

    Running daemons stop within ~2 s and hand the lanes' claimed mail back to the
    queue. Nothing is suppressed. Lasts until --until or `warmup resume`.
    """
    _act(
        ctx,
        ControlAction.pause,
        ip=ip,
        isp=isp,
        until_text=until_text,
        reason=reason,
        as_json=as_json,
    )


@click.command()
@_IP
@_ISP
@_REASON
@_JSON
@click.pass_context
def resume(
    ctx: click.Context, ip: str | None, isp: str | None, reason: str, as_json: bool
) -> None:
    """Send again on lanes paused by `warmup pause` or by a reaction (a block,
    repeated throttles, a complaint rate): the operator overrides them."""
    _act(
        ctx,
        ControlAction.resume,
        ip=ip,
        isp=isp,
        until_text=None,
        reason=reason,
        as_json=as_json,
    )


# -- campaigns -------------------------------------------------------------------


@click.group()
def campaign() -> None:
    """List campaigns, cancel one everywhere, or resume it."""


def _campaign_json(row: CampaignRow) -> dict[str, Any]:
    counts = row["counts"]
    return {
        "name": row["name"],
        "state": "cancelled" if row["cancelled_at"] else "active",
        "relayed": row["relayed"],
        "created_at": row["created_at"].isoformat(),
        "cancelled_at": (
            row["cancelled_at"].isoformat() if row["cancelled_at"] else None
        ),
        **{state: counts.get(state, 0) for state in (*_COUNTS, "cancelled")},
        "total": sum(counts.values()),
    }


def _print_campaigns(rows: list[CampaignRow], as_json: bool) -> None:
    entries = [_campaign_json(row) for row in rows]
    if as_json:
        for entry in entries:
            echo_json(entry)
        return
    table = Table("campaign", "state", *_HEADS, "cancel.", "total")
    for entry in entries:
        numbers = [str(entry[k]) for k in (*_COUNTS, "cancelled", "total")]
        table.add_row(entry["name"], entry["state"], *numbers)
    out_console().print(table)


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per campaign.")
@click.pass_context
def campaign_list(ctx: click.Context, as_json: bool) -> None:
    """Every campaign with its recipients per state."""
    rows = with_store(config_from(ctx), lambda store: store.campaign_rows())
    _print_campaigns(rows, as_json)


@campaign.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The campaign as JSON.")
@click.pass_context
def campaign_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """One campaign: state and recipients per state."""
    rows = with_store(config_from(ctx), lambda store: store.campaign_rows(name))
    if not rows:
        fail(f"no campaign called {name!r}", EXIT_CONFIG)
    _print_campaigns(rows, as_json)


def _set_cancelled(ctx: click.Context, name: str, reason: str, cancel: bool) -> None:
    now = SystemClock().now()
    moved = with_store(
        config_from(ctx),
        lambda store: store.set_campaign_cancelled(
            name, cancel=cancel, actor=actor(), reason=reason, now=now
        ),
    )
    if cancel:
        out_console().print(
            f"cancelled {name}: {moved} queued recipients will not be sent; "
            "running daemons drop the ones they hold within a few seconds"
        )
    else:
        out_console().print(f"resumed {name}: {moved} recipients queued again")


@campaign.command("cancel")
@click.argument("name")
@_REASON
@click.pass_context
def campaign_cancel(ctx: click.Context, name: str, reason: str) -> None:
    """Send nothing more of campaign NAME, on any node.

    Its unsent recipients become `cancelled` (not suppressed); `campaign resume`
    queues them again.
    """
    _set_cancelled(ctx, name, reason, cancel=True)


@campaign.command("resume")
@click.argument("name")
@_REASON
@click.pass_context
def campaign_resume(ctx: click.Context, name: str, reason: str) -> None:
    """Queue the cancelled recipients of campaign NAME again."""
    _set_cancelled(ctx, name, reason, cancel=False)
