"""Helpers shared by the CLI commands: config loading, exit codes, output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from warmup.adapters.recipient_file import RowReader
from warmup.app.rows import RowProblem
from warmup.config import Config, load_config, resolve_config_path
from warmup.core.errors import ConfigError, InputError, WarmupError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_RUNTIME",
    "config_from",
    "echo_json",
    "err_console",
    "fail",
    "file_progress",
    "out_console",
    "print_problems",
    "progress_bar",
    "run_async",
]

EXIT_RUNTIME = 1
EXIT_CONFIG = 2
PROBLEMS_SHOWN = 100
T = TypeVar("T")
R = TypeVar("R")


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
        config = load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_CONFIG)
    except WarmupError as exc:  # pragma: no cover - defensive
        fail(str(exc), EXIT_CONFIG)
    for warning in config.warnings:
        click.echo(warning, err=True)
    return config


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (``pip install warmup[fast]``);
    None (asyncio's own loop) when it is not."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine (on uvloop when installed); WarmupErrors become clean
    messages and exit codes."""
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(coro)
    except InputError as exc:
        fail(str(exc), EXIT_CONFIG)
    except WarmupError as exc:
        fail(str(exc), EXIT_RUNTIME)


def progress_bar(total: int | None, description: str) -> Progress:
    """A progress display on stderr, silent when stderr is not a terminal."""
    console = err_console()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or total == 0,
    )


@contextmanager
def file_progress(
    reader: RowReader, label: str, describe: Callable[[R], str]
) -> Iterator[Callable[[R], None]]:
    """A progress bar over a file being read; yields the per-batch callback."""
    with progress_bar(reader.size, label) as progress:
        task = progress.add_task(label, total=reader.size or None, detail="")

        def show(report: R) -> None:
            progress.update(task, completed=reader.position(), detail=describe(report))

        yield show


def print_problems(source: str, problems: list[RowProblem], invalid: int) -> None:
    """List bad rows on stderr as FILE:LINE: message (capped)."""
    shown = problems[:PROBLEMS_SHOWN]
    for problem in shown:
        click.echo(f"{source}:{problem.line}: {problem.message}", err=True)
    if invalid > len(shown):
        click.echo(f"… and {invalid - len(shown)} more invalid rows", err=True)
