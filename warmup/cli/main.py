"""Top-level click group and shared options; registers every command."""

from __future__ import annotations

import logging

import click

from warmup import __version__
from warmup.cli.bounces_cmd import bounces
from warmup.cli.classify_cmd import classify
from warmup.cli.demo_cmd import demo
from warmup.cli.queue_cmds import enqueue
from warmup.cli.run_cmd import run
from warmup.cli.schedule_cmds import check, plan, schedule
from warmup.cli.status_cmd import status
from warmup.cli.suppress_cmds import suppress

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
@click.version_option(__version__, prog_name="warmup")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """warmup: warm up new sending IPs by pacing mail along per-ISP ramps."""
    if log_level is None:
        daemon = ctx.invoked_subcommand in ("run",)
        log_level = "info" if daemon else "warning"
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = {"config_path": config_path}


_COMMANDS = (
    demo,
    run,
    status,
    check,
    schedule,
    plan,
    enqueue,
    suppress,
    classify,
    bounces,
)
for command in _COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="warmup")
