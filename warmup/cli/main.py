"""Top-level click group and shared options; registers every command."""

from __future__ import annotations

import click

from warmup import __version__
from warmup.cli.bounces_cmd import bounces
from warmup.cli.classify_cmd import classify
from warmup.cli.control_cmds import campaign, pause, resume
from warmup.cli.demo_cmd import demo
from warmup.cli.events_cmd import events
from warmup.cli.logs import FORMATS, configure_logging
from warmup.cli.queue_cmds import enqueue
from warmup.cli.relay_cmds import relay
from warmup.cli.report_cmd import report
from warmup.cli.run_cmd import run
from warmup.cli.schedule_cmds import check, plan, schedule
from warmup.cli.status_cmd import status
from warmup.cli.suppress_cmds import suppress
from warmup.cli.trace_cmd import trace

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: ./config.yaml, else the shipped example).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Default: info for `run`, warning otherwise.",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Logs on stderr: readable text, or one JSON object per line.",
)
@click.version_option(__version__, prog_name="warmup")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str
) -> None:
    """warmup: warm up new sending IPs by pacing mail along per-ISP ramps."""
    if log_level is None:
        daemon = ctx.invoked_subcommand in ("run",)
        log_level = "info" if daemon else "warning"
    configure_logging(log_level, log_format)
    ctx.obj = {"config_path": config_path}


_COMMANDS = (
    demo,
    run,
    relay,
    status,
    report,
    check,
    schedule,
    plan,
    enqueue,
    suppress,
    classify,
    bounces,
    pause,
    resume,
    campaign,
    trace,
    events,
)
for command in _COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="warmup")
