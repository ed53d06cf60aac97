"""The options every command takes, before or after its name.

``warmup -c x.yaml check`` and ``warmup check -c x.yaml`` mean the same: the
root group and every command under it (sub-groups and their commands too) carry
``-c/--config``, ``--log-level`` and ``--log-format``. They are defined once
here; :class:`WarmupGroup` attaches them to each command it holds. Every copy
writes into the root context's ``obj``, so the last one given wins and commands
read the choice with ``warmup.cli.common.config_from``.
"""

from __future__ import annotations

from typing import Any

import click

from warmup.cli.logs import FORMATS, configure_logging

__all__ = ["LOG_LEVELS", "WarmupGroup", "apply_logging", "attach_shared_options"]

LOG_LEVELS = ("debug", "info", "warning", "error")
# Commands that log at info unless told otherwise (the daemon).
_INFO_COMMANDS = frozenset({"run"})
_MARK = "_warmup_shared_options"


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep a given value in the root context; re-apply logging below the root."""
    if value is None or param.name is None:
        return
    root = ctx.find_root()
    root.ensure_object(dict)[param.name] = value
    if param.name != "config_path" and ctx is not root:
        apply_logging(root)


def _options() -> list[click.Option]:
    """Fresh copies of the shared options (a click Option belongs to one command)."""
    return [
        click.Option(
            ["-c", "--config", "config_path"],
            metavar="PATH",
            expose_value=False,
            callback=_store,
            help="Config file (default: ./config.yaml, else the shipped example).",
        ),
        click.Option(
            ["--log-level"],
            type=click.Choice(LOG_LEVELS),
            expose_value=False,
            callback=_store,
            help="Default: info for `run`, warning otherwise.",
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(FORMATS),
            expose_value=False,
            callback=_store,
            help="Logs on stderr: readable text (default), or one JSON object a line.",
        ),
    ]


def apply_logging(root: click.Context) -> None:
    """Configure logging from what the root context holds (defaults otherwise)."""
    chosen = root.obj if isinstance(root.obj, dict) else {}
    level = chosen.get("log_level")
    if level is None:
        level = "info" if root.invoked_subcommand in _INFO_COMMANDS else "warning"
    configure_logging(level, chosen.get("log_format") or "text")


def attach_shared_options(command: click.Command) -> None:
    """Give ``command`` (and, for a group, everything under it) the shared options.

    Idempotent. An option whose flags the command already uses is left out.
    """
    if not getattr(command, _MARK, False):
        taken = {opt for param in command.params for opt in param.opts}
        command.params.extend(
            option for option in _options() if not taken.intersection(option.opts)
        )
        setattr(command, _MARK, True)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            attach_shared_options(sub)


class WarmupGroup(click.Group):
    """The root group: every command added to it takes the shared options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        attach_shared_options(self)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        attach_shared_options(cmd)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # Commands added to a sub-group after it joined the root get them here.
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            attach_shared_options(command)
        return command
