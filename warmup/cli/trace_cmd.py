"""``warmup trace ADDRESS``: the whole story of one recipient."""

from __future__ import annotations

import click
from rich.markup import escape

from warmup.app.store_rows import TraceStep
from warmup.cli.common import EXIT_CONFIG, config_from, echo_json, fail, out_console
from warmup.cli.control_cmds import with_store
from warmup.core.recipients.address import AddressError, parse_address

__all__ = ["trace"]

JSON_HELP = """
\b
--json prints one object per step, oldest first: at, step (enqueued |
submitted | attempt | late_report | suppressed | event), detail, and the step's
fields (campaign, state, ip, isp, verdict, reason, reply, status, outcome,
source; for an outcome event its event_id and type).
"""


@click.command(epilog=JSON_HELP)
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per step.")
@click.pass_context
def trace(ctx: click.Context, address: str, as_json: bool) -> None:
    """Everything that happened to ADDRESS: queued or submitted (which campaign,
    deadline, state now), each attempt (time, IP, ISP, verdict, reply), late
    bounces and complaints, its suppression with the source, and the outcome
    events written for it (see `warmup events`)."""
    try:
        normalised = parse_address(address).address
    except AddressError as exc:
        fail(str(exc), EXIT_CONFIG)
    steps = with_store(config_from(ctx), lambda store: store.trace(normalised))
    if not steps:
        fail(f"nothing known about {normalised}")
    for step in steps:
        step.pop("order", None)
    if as_json:
        for step in steps:
            echo_json(step)
        return
    console = out_console()
    for step in steps:
        console.print(_line(step), highlight=False)


def _line(step: TraceStep) -> str:
    at = step["at"].strftime("%Y-%m-%d %H:%M:%S")
    return f"{at}  [bold]{step['step']:<12}[/] {escape(step['detail'])}"
