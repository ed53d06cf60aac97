"""``warmup suppress add | remove | list | import | export``."""

from __future__ import annotations

import csv
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import IO, TypeVar

import click
from rich.table import Table

from warmup.adapters.db.store import SQLStore
from warmup.adapters.private_file import open_private
from warmup.adapters.recipient_file import RowReader
from warmup.app.clock import SystemClock
from warmup.app.suppress import ImportReport, import_suppressions, parse_entries
from warmup.cli.common import (
    EXIT_CONFIG,
    config_from,
    echo_json,
    fail,
    file_progress,
    out_console,
    print_problems,
    run_async,
)
from warmup.config import Config
from warmup.core.recipients.address import AddressError, normalize_suppression
from warmup.core.recipients.suppression import Suppression

__all__ = ["suppress"]

T = TypeVar("T")
EXPORT_COLUMNS = ("address", "kind", "reason", "source", "created_at")


@asynccontextmanager
async def _store(config: Config) -> AsyncIterator[SQLStore]:
    store = await SQLStore.open(config.settings.database)
    try:
        yield store
    finally:
        await store.close()


def _with_store(ctx: click.Context, work: Callable[[SQLStore], Awaitable[T]]) -> T:
    config = config_from(ctx)

    async def go() -> T:
        async with _store(config) as store:
            return await work(store)

    return run_async(go())


@click.group()
def suppress() -> None:
    """Manage the suppression list (addresses, or @domain for a whole domain)."""


@suppress.command("add")
@click.argument("addresses", nargs=-1, required=True)
@click.option("--reason", default="manual", show_default=True)
@click.option("--source", default="cli", show_default=True)
@click.pass_context
def add(
    ctx: click.Context, addresses: tuple[str, ...], reason: str, source: str
) -> None:
    """Suppress ADDRESSES (user@example.com or @example.com)."""
    entries, errors = parse_entries(
        addresses, reason=reason, source=source, now=SystemClock().now()
    )
    for error in errors:
        click.echo(f"error: {error}", err=True)
    added = _with_store(ctx, lambda store: store.add_suppressions(entries))
    out_console().print(
        f"added {added}, already suppressed {len(entries) - added}, "
        f"invalid {len(errors)}"
    )
    if errors:
        sys.exit(EXIT_CONFIG)


@suppress.command("remove")
@click.argument("addresses", nargs=-1, required=True)
@click.pass_context
def remove(ctx: click.Context, addresses: tuple[str, ...]) -> None:
    """Take ADDRESSES off the suppression list."""
    try:
        keys = [normalize_suppression(text) for text in addresses]
    except AddressError as exc:
        fail(str(exc), EXIT_CONFIG)
    removed = _with_store(ctx, lambda store: store.remove_suppressions(keys))
    out_console().print(f"removed {removed}, not found {len(keys) - removed}")


@suppress.command("list")
@click.option("--reason", help="Only entries with this reason.")
@click.option(
    "--source",
    help="Only entries from this source (dns: domains found dead by DNS lookups).",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@click.pass_context
def list_(
    ctx: click.Context,
    reason: str | None,
    source: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show suppressed addresses, oldest first."""

    async def collect(store: SQLStore) -> tuple[list[Suppression], int]:
        found = store.iter_suppressions(reason=reason, source=source, limit=limit)
        items = [e async for e in found]
        return items, await store.count_suppressions()

    entries, total = _with_store(ctx, collect)
    if as_json:
        for entry in entries:
            echo_json(_row(entry))
        return
    table = Table(title=f"suppressions ({len(entries):,} shown of {total:,})")
    for column in EXPORT_COLUMNS:
        table.add_column(column)
    for entry in entries:
        table.add_row(*(str(value) for value in _row(entry).values()))
    out_console().print(table)


def _row(entry: Suppression) -> dict[str, str]:
    return {
        "address": entry.address,
        "kind": entry.kind.value,
        "reason": entry.reason,
        "source": entry.source,
        "created_at": entry.created_at.isoformat(),
    }


def _added(report: ImportReport) -> str:
    return f"{report.added:,} added"


@suppress.command("import")
@click.argument("file")
@click.option(
    "--reason",
    default="import",
    show_default=True,
    help="Reason for rows without a `reason` column.",
)
@click.option("--source", default=None, help="Source (default: the file name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def import_(
    ctx: click.Context, file: str, reason: str, source: str | None, as_json: bool
) -> None:
    """Import a CSV with an `address` column; `reason`, `source` optional."""

    async def work(store: SQLStore) -> ImportReport:
        reader = RowReader(file, "csv", required="address", aliases=("email",))
        try:
            with file_progress(reader, "import", _added) as show:
                return await import_suppressions(
                    store,
                    reader,
                    reason=reason,
                    source=source or file,
                    now=SystemClock().now(),
                    on_batch=show,
                )
        finally:
            reader.close()

    report = _with_store(ctx, work)
    if report.problems:
        print_problems(file, report.problems, report.invalid)
    summary = {
        "rows": report.rows,
        "added": report.added,
        "existing": report.existing,
        "invalid": report.invalid,
    }
    if as_json:
        echo_json(summary)
        return
    out_console().print(
        f"{report.rows:,} rows → added [green]{report.added:,}[/], already suppressed "
        f"{report.existing:,}, invalid [red]{report.invalid:,}[/]"
    )


@suppress.command("export")
@click.argument("file", default="-")
@click.option("--reason", help="Only entries with this reason.")
@click.pass_context
def export(ctx: click.Context, file: str, reason: str | None) -> None:
    """Write the suppression list as CSV to FILE (default: stdout)."""

    out: IO[str] = (
        sys.stdout
        if file == "-"
        else open_private(file)  # the list holds addresses: 0600
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)

    async def work(store: SQLStore) -> int:
        count = 0
        async for entry in store.iter_suppressions(reason=reason):
            writer.writerow(_row(entry).values())
            count += 1
        return count

    try:
        count = _with_store(ctx, work)
    finally:
        if out is not sys.stdout:
            out.close()
    if file != "-":
        click.echo(f"exported {count:,} entries to {file}", err=True)
