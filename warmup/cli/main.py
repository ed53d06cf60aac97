"""Top-level click group and shared options; registers every command."""

from __future__ import annotations

import click

from warmup import __version__
from warmup.cli.bounces_cmd import bounces
from warmup.cli.classify_cmd import classify
from warmup.cli.control_cmds import campaign, pause, resume
from warmup.cli.demo_cmd import demo
from warmup.cli.dkim_cmds import dkim
from warmup.cli.dmarc_cmd import dmarc
from warmup.cli.doctor_cmd import doctor
from warmup.cli.events_cmd import events
from warmup.cli.options import WarmupGroup, apply_logging
from warmup.cli.queue_cmds import enqueue
from warmup.cli.relay_cmds import relay
from warmup.cli.report_cmd import report
from warmup.cli.reputation_cmd import reputation
from warmup.cli.run_cmd import run
from warmup.cli.schedule_cmds import check, plan, schedule
from warmup.cli.status_cmd import status
from warmup.cli.suppress_cmds import suppress
from warmup.cli.trace_cmd import trace

__all__ = ["cli", "main"]


@click.group(cls=WarmupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="warmup")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """warmup: warm up new sending IPs by pacing mail along per-ISP ramps.

    -c/--config, --log-level and --log-format go before or after a command's name.
    """
    ctx.ensure_object(dict).setdefault("config_path", None)
    apply_logging(ctx)


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
    dkim,
    dmarc,
    pause,
    resume,
    campaign,
    trace,
    doctor,
    events,
    reputation,
)
for command in _COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="warmup")
