"""``warmup dmarc ingest``: DMARC aggregate reports -> the database."""

from __future__ import annotations

import mailbox
import sys
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import click

from warmup.adapters.db.store import SQLStore
from warmup.adapters.dmarc_report import is_report_file, read_report, reports_in_mail
from warmup.adapters.mailboxes import mails_in
from warmup.app.clock import SystemClock
from warmup.app.dmarc import DMARCIntake
from warmup.cli.common import EXIT_RUNTIME, config_from, echo_json, run_async
from warmup.config import Config
from warmup.core.auth.dmarc import DMARCReport
from warmup.core.errors import InputError, UnsafeInputError

__all__ = ["dmarc"]


@click.group()
def dmarc() -> None:
    """DMARC aggregate reports (RFC 7489 rua): authentication per sending IP."""


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Store DMARC aggregate reports: .xml, .xml.gz, .zip files, or mails
    carrying them (.eml, mbox, maildir, a directory of any of these).

    Prints one JSON line per report: source, org, report_id, day, messages,
    dmarc_pass, outcome (stored, duplicate, refused, unreadable) and error.
    XML with a DTD or entities (XML bombs, external entities) and archives that
    expand past dmarc.max_report_bytes are refused and change nothing. `warmup
    status` shows each IP's pass rate; `warmup run` holds the ramps of an IP
    whose reports fail. Exit code 1 if any input was refused or unreadable.
    """
    config = config_from(ctx)
    counts, ok = run_async(_ingest(config, paths))
    summary = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    click.echo(f"dmarc reports: {summary or 'none found'}", err=True)
    if not ok:
        sys.exit(EXIT_RUNTIME)


def _reports(path: str, limit: int) -> Iterator[tuple[str, DMARCReport | InputError]]:
    """(source, report or why not) for every report in ``path``."""
    where = Path(path)
    if where.is_dir() and not _maildir(path):
        for child in sorted(where.iterdir()):
            yield from _reports(str(child), limit)
        return
    if where.is_file():
        with where.open("rb") as handle:
            head = handle.read(8)
            # Never more than the bound in memory: a longer file is refused.
            data = head + handle.read(limit) if is_report_file(path, head) else b""
        if len(data) > limit:
            yield path, UnsafeInputError(path, f"larger than {limit} bytes; refused")
            return
        if data:
            try:
                yield path, read_report(data, source=path, limit=limit)
            except InputError as exc:
                yield path, exc
            return
    for source, data in mails_in(path):
        try:
            for report in reports_in_mail(data, source=source, limit=limit):
                yield source, report
        except InputError as exc:
            yield source, exc


def _maildir(path: str) -> bool:
    return (Path(path) / "cur").is_dir() or (Path(path) / "new").is_dir()


async def _ingest(config: Config, paths: tuple[str, ...]) -> tuple[Counter[str], bool]:
    store = await SQLStore.open(config.settings.database)
    limit = config.settings.dmarc.max_report_bytes
    intake = DMARCIntake(
        store,
        clock=SystemClock(),
        read_mail=partial(_read_mail, limit=limit),
    )
    counts: Counter[str] = Counter()
    ok = True
    try:
        for path in paths:
            try:
                for source, found in _reports(path, limit):
                    outcome = await _one(intake, source, found)
                    counts[outcome] += 1
                    ok = ok and outcome in ("stored", "duplicate")
            except (OSError, mailbox.Error) as exc:
                click.echo(f"{path}: cannot read: {exc}", err=True)
                ok = False
    finally:
        await store.close()
    return counts, ok


def _read_mail(data: bytes, source: str, *, limit: int) -> list[DMARCReport]:
    return reports_in_mail(data, source=source, limit=limit)


async def _one(
    intake: DMARCIntake, source: str, found: DMARCReport | InputError
) -> str:
    if isinstance(found, InputError):
        refused = isinstance(found, UnsafeInputError)
        outcome = "refused" if refused else "unreadable"
        echo_json({"source": source, "outcome": outcome, "error": str(found)})
        click.echo(f"{found}", err=True)
        return outcome
    added = await intake.save(found)
    outcome = "stored" if added else "duplicate"
    echo_json(
        {
            "source": source,
            "org": found.org,
            "report_id": found.report_id,
            "day": found.begin.date().isoformat(),
            "messages": found.messages,
            "dmarc_pass": sum(row.dmarc_pass for row in found.rows),
            "outcome": outcome,
            "error": None,
        }
    )
    return outcome


dmarc.add_command(ingest)
