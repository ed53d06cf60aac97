"""Managing the suppression list: add, remove, bulk import."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from warmup.app.ports import Store
from warmup.app.rows import ProblemLog, SourceRow, batches
from warmup.core.recipients.address import AddressError
from warmup.core.recipients.suppression import Suppression, make_suppression

__all__ = ["ImportReport", "import_suppressions", "parse_entries"]


@dataclass(slots=True, kw_only=True)
class ImportReport(ProblemLog):
    added: int = 0
    existing: int = 0


def parse_entries(
    texts: Iterable[str], *, reason: str, source: str, now: datetime
) -> tuple[list[Suppression], list[str]]:
    """Turn addresses/@domains into entries; second item lists the errors."""
    entries, errors = [], []
    for text in texts:
        try:
            entries.append(
                make_suppression(text, reason=reason, source=source, now=now)
            )
        except AddressError as exc:
            errors.append(str(exc))
    return entries, errors


async def import_suppressions(
    store: Store,
    rows: Iterable[SourceRow],
    *,
    reason: str,
    source: str,
    now: datetime,
    batch_size: int = 5000,
    on_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Add every valid row (column ``address``; optional ``reason``, ``source``)."""
    report = ImportReport()
    for batch in batches(rows, batch_size):
        entries = []
        for row in batch:
            report.rows += 1
            entry = _entry(row, reason, source, now, report)
            if entry is not None:
                entries.append(entry)
        added = await store.add_suppressions(entries)
        report.added += added
        report.existing += len(entries) - added
        if on_batch is not None:
            on_batch(report)
    return report


def _entry(
    row: SourceRow, reason: str, source: str, now: datetime, report: ImportReport
) -> Suppression | None:
    if row.values is None:
        report.add_problem(row.line, row.error or "unreadable row")
        return None
    text = row.values.get("address", row.values.get("email", ""))
    try:
        return make_suppression(
            text,
            reason=row.values.get("reason") or reason,
            source=row.values.get("source") or source,
            now=now,
        )
    except AddressError as exc:
        report.add_problem(row.line, f"address: {exc}")
        return None
