"""enqueue_rows inserts one batch while it validates the next: the counts, the
order and the failures must be those of one batch after the other."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from warmup.adapters.db.store import SQLStore
from warmup.app.enqueue import EnqueueReport, enqueue_rows
from warmup.app.ports import TemplateRecord
from warmup.app.rows import SourceRow
from warmup.core.errors import StoreError
from warmup.core.recipients.suppression import make_suppression

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
TEMPLATE = TemplateRecord(
    name="t.eml", sha256="b" * 64, content=b"Subject: x\r\n\r\nhi"
)


def _rows(addresses: list[str]) -> list[SourceRow]:
    return [
        SourceRow(line=n + 1, values={"email": address})
        for n, address in enumerate(addresses)
    ]


async def test_counts_across_batches_are_those_of_one_batch_at_a_time(
    tmp_path: Path,
) -> None:
    store = await SQLStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
        await store.add_suppressions(
            [
                make_suppression(
                    "gone@example.com", reason="test", source="test", now=NOW
                )
            ]
        )
        seen: list[int] = []
        addresses = [
            "a@example.com",
            "b@example.com",
            "a@example.com",  # a duplicate of the batch before
            "gone@example.com",  # suppressed
            "not an address",
            "c@example.com",
            "b@example.com",  # a duplicate two batches on
        ]
        report = await enqueue_rows(
            store,
            campaign.id,
            _rows(addresses),
            placeholders=frozenset(),
            isp_of=lambda domain: "x",
            now=NOW,
            batch_size=2,
            on_batch=lambda r: seen.append(r.queued + r.duplicate),
        )
        assert (report.queued, report.duplicate, report.suppressed) == (3, 2, 1)
        assert report.rows == 7 and len(report.problems) == 1
        assert seen == sorted(seen) and seen[-1] == 5  # after every batch, in order
        counts = await store.count_recipients(campaign.id)
        assert counts.get("queued") == 3
    finally:
        await store.close()


async def test_a_failed_insert_stops_the_load_with_a_store_error(
    tmp_path: Path,
) -> None:
    store = await SQLStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
        report = EnqueueReport()

        def note_progress(progress: EnqueueReport) -> None:
            report.queued = progress.queued

        with sqlite3.connect(tmp_path / "w.db") as raw:  # inserts now fail
            raw.execute("ALTER TABLE recipients RENAME TO recipients_gone")
        with pytest.raises(StoreError):
            await enqueue_rows(
                store,
                campaign.id,
                _rows([f"r{n}@example.com" for n in range(10)]),
                placeholders=frozenset(),
                isp_of=lambda domain: "x",
                now=NOW,
                batch_size=3,
                on_batch=note_progress,
            )
        assert report.queued == 0
    finally:
        await store.close()
