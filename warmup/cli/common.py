"""Helpers shared by the CLI commands: config loading, exit codes, output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from warmup.config import Config, load_config, resolve_config_path
from warmup.core.errors import ConfigError, WarmupError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_RUNTIME",
    "config_from",
    "echo_json",
    "err_console",
    "fail",
    "out_console",
]

EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def out_console() -> Console:
    return Console(soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def config_from(ctx: click.Context) -> Config:
    """Load the config chosen by ``-c`` (exit 2 listing every issue)."""
    option = ctx.find_root().obj.get("config_path") if ctx.find_root().obj else None
    path: Path = resolve_config_path(option)
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_CONFIG)
    except WarmupError as exc:  # pragma: no cover - defensive
        fail(str(exc), EXIT_CONFIG)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=str))
