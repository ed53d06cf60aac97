"""Loading a recipient list into a campaign: validate, filter, queue in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from warmup.app.ports import Store
from warmup.app.rows import ProblemLog, SourceRow, batches
from warmup.core.recipients.recipient import NewRecipient, RowError, parse_recipient_row
from warmup.core.recipients.suppression import is_suppressed, lookup_keys

__all__ = ["EnqueueReport", "enqueue_rows"]


@dataclass(slots=True, kw_only=True)
class EnqueueReport(ProblemLog):
    queued: int = 0
    duplicate: int = 0
    suppressed: int = 0


async def enqueue_rows(
    store: Store,
    campaign_id: int,
    rows: Iterable[SourceRow],
    *,
    placeholders: frozenset[str],
    header_placeholders: frozenset[str] = frozenset(),
    isp_of: Callable[[str], str | None],
    now: datetime,
    batch_size: int = 2000,
    deadline: datetime | None = None,
    on_batch: Callable[[EnqueueReport], None] | None = None,
) -> EnqueueReport:
    """Queue every valid, unsuppressed, new row; count the rest by cause.

    One batch is being inserted while the next is validated and checked
    against the suppression list (the store's insert runs mostly off the event
    loop: SQLite's thread, PostgreSQL's server); inserts stay one at a time,
    in order."""
    report = EnqueueReport()
    inserting: asyncio.Task[None] | None = None
    try:
        for batch in batches(rows, batch_size):
            valid = _validate(batch, placeholders, header_placeholders, report)
            keys = await store.suppressed_keys(
                sorted(lookup_keys(r.address for r in valid))
            )
            sendable: list[NewRecipient] = []
            refused: list[str] = []
            for r in valid:
                if is_suppressed(r.address, keys):
                    refused.append(r.address)
                else:
                    sendable.append(r)
            if inserting is not None:
                await inserting
            report.suppressed += len(refused)
            if refused:  # their outcome: refused as already suppressed
                await store.record_refused(campaign_id, refused, now, "enqueue")

            async def insert(sendable: list[NewRecipient] = sendable) -> None:
                inserted = await store.insert_recipients(
                    campaign_id,
                    sendable,
                    [isp_of(r.domain) for r in sendable],
                    now,
                    deadline=deadline,
                )
                report.queued += inserted
                report.duplicate += len(sendable) - inserted
                if on_batch is not None:
                    on_batch(report)

            inserting = asyncio.create_task(insert())
        if inserting is not None:
            await inserting
    finally:
        if inserting is not None and not inserting.done():
            inserting.cancel()
            await asyncio.gather(inserting, return_exceptions=True)
    return report


def _validate(
    batch: list[SourceRow],
    placeholders: frozenset[str],
    header_placeholders: frozenset[str],
    report: EnqueueReport,
) -> list[NewRecipient]:
    valid = []
    for row in batch:
        report.rows += 1
        if row.values is None:
            report.add_problem(row.line, row.error or "unreadable row")
            continue
        try:
            valid.append(
                parse_recipient_row(row.values, placeholders, header_placeholders)
            )
        except RowError as exc:
            report.add_problem(row.line, str(exc))
    return valid
