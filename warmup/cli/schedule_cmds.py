"""``warmup check``, ``warmup schedule show`` and ``warmup plan``."""

from __future__ import annotations

import os
from datetime import date, timedelta

import click
from rich.table import Table

from warmup.app.clock import SystemClock
from warmup.cli.common import EXIT_CONFIG, config_from, echo_json, fail, out_console
from warmup.cli.dkim_cmds import report_dkim
from warmup.core.lanes.plan import PlanRow, plan_volume
from warmup.core.lanes.schedule import Schedule

__all__ = ["check", "plan", "schedule"]


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config file and every schedule; exit 2 listing all problems."""
    config = config_from(ctx)
    settings = config.settings
    console = out_console()
    console.print(f"[green]ok[/] {config.path}")
    console.print(
        f"  {len(settings.ips)} source IPs, {len(config.schedules)} schedules "
        f"({', '.join(sorted(config.schedules))}), timezone {settings.timezone}"
    )
    if settings.bounces.verp_secret_env not in os.environ:
        console.print(
            f"  [yellow]warning[/]: environment variable "
            f"{settings.bounces.verp_secret_env} (bounces.verp_secret_env) is not set; "
            "`warmup run` needs it to sign VERP return paths"
        )
    report_dkim(config, console)


@click.group()
def schedule() -> None:
    """Inspect the per-ISP warm-up schedules."""


def _parse_date(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


@schedule.command("show")
@click.argument("isp")
@click.option(
    "--start",
    callback=_parse_date,
    metavar="YYYY-MM-DD",
    help="Date of ramp day 1 (default: today in the config's time zone).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per day.")
@click.pass_context
def show(ctx: click.Context, isp: str, start: date | None, as_json: bool) -> None:
    """The day-by-day plan of ISP's ramp: date, weekday, per hour, per day."""
    config = config_from(ctx)
    found = config.schedules.get(isp.lower())
    if found is None:
        fail(
            f"no schedule for {isp!r}; known: {', '.join(sorted(config.schedules))}",
            EXIT_CONFIG,
        )
    first = start or SystemClock().now().astimezone(config.tz).date()
    rows = _schedule_rows(found, first)
    if as_json:
        for row in rows:
            echo_json(row)
        return
    table = Table(
        title=f"{found.isp}: window {found.window.describe()} "
        f"({found.window.hours:g} h/day), per source IP"
    )
    for name in ("day", "date", "weekday", "per hour", "per day"):
        table.add_column(
            name, justify="right" if name.startswith(("day", "per")) else "left"
        )
    for row in rows:
        table.add_row(
            str(row["day"]),
            str(row["date"]),
            str(row["weekday"]),
            f"{row['per_hour']:,}",
            f"{row['per_day']:,}",
        )
    out_console().print(table)
    out_console().print(
        f"after day {found.last_day}: {found.warmed_per_hour:,}/h (warmed)"
    )


def _schedule_rows(found: Schedule, first: date) -> list[dict[str, object]]:
    rows = []
    for day in range(1, found.last_day + 1):
        when = first + timedelta(days=day - 1)
        rows.append(
            {
                "isp": found.isp,
                "day": day,
                "date": when.isoformat(),
                "weekday": when.strftime("%a"),
                "per_hour": found.per_hour(day),
                "per_day": found.per_day(day),
            }
        )
    return rows


def _parse_volumes(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, int]:
    volumes = {}
    for value in values:
        isp, sep, number = value.partition("=")
        digits = number.replace("_", "").replace(",", "")
        if not sep or not isp or not digits.isdigit() or int(digits) <= 0:
            raise click.BadParameter(
                f"expected ISP=COUNT like gmail=1000000, got {value!r}"
            )
        volumes[isp.lower()] = int(digits)
    if not volumes:
        raise click.BadParameter("give at least one --volume ISP=COUNT")
    return volumes


@click.command()
@click.option(
    "--ips",
    type=click.IntRange(min=1),
    required=True,
    help="Number of source IPs warming in parallel.",
)
@click.option(
    "--volume",
    "volumes",
    multiple=True,
    callback=_parse_volumes,
    metavar="ISP=COUNT",
    help="Daily volume to reach for an ISP (repeatable).",
)
@click.option(
    "--start",
    callback=_parse_date,
    metavar="YYYY-MM-DD",
    help="Date of ramp day 1, to print dates.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per ISP.")
@click.pass_context
def plan(
    ctx: click.Context,
    ips: int,
    volumes: dict[str, int],
    start: date | None,
    as_json: bool,
) -> None:
    """Forecast: the first day the pool can carry each ISP's daily volume."""
    config = config_from(ctx)
    unknown = sorted(set(volumes) - set(config.schedules))
    if unknown:
        fail(
            f"no schedule for {', '.join(unknown)}; known: "
            f"{', '.join(sorted(config.schedules))}",
            EXIT_CONFIG,
        )
    first = start or SystemClock().now().astimezone(config.tz).date()
    rows = [
        plan_volume(config.schedules[isp], ips=ips, volume=volume)
        for isp, volume in volumes.items()
    ]
    if as_json:
        for row in rows:
            echo_json(_plan_dict(row, first))
        return
    _plan_table(rows, first)


def _plan_dict(row: PlanRow, first: date) -> dict[str, object]:
    reached = first + timedelta(days=row.day - 1) if row.day else None
    return {
        "isp": row.isp,
        "ips": row.ips,
        "volume": row.volume,
        "day": row.day,
        "date": reached.isoformat() if reached else None,
        "sent_until_then": row.sent_until_then,
        "capacity_on_day": row.capacity_on_day,
        "max_capacity": row.max_capacity,
        "ips_needed_when_warmed": row.ips_needed_when_warmed,
    }


def _plan_table(rows: list[PlanRow], first: date) -> None:
    table = Table(title="capacity forecast")
    for name in (
        "ISP",
        "IPs",
        "daily volume",
        "full volume on day",
        "date",
        "sent until then",
        "pool capacity that day",
    ):
        table.add_column(name, justify="left" if name in ("ISP", "date") else "right")
    notes = []
    for row in rows:
        data = _plan_dict(row, first)
        table.add_row(
            row.isp,
            str(row.ips),
            f"{row.volume:,}",
            str(row.day) if row.day else "never",
            str(data["date"] or "-"),
            f"{row.sent_until_then:,}",
            f"{row.capacity_on_day:,}",
        )
        if row.day is None:
            notes.append(
                f"{row.isp}: {row.ips} IPs carry at most {row.max_capacity:,}/day "
                f"once warmed; {row.ips_needed_when_warmed} IPs would carry "
                f"{row.volume:,}/day"
            )
    console = out_console()
    console.print(table)
    for note in notes:
        console.print(f"[yellow]note[/]: {note}")
