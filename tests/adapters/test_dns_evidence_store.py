"""The store keeps dead-domain DNS evidence (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warmup.adapters.db.store import SQLStore
from warmup.core.recipients.dns_evidence import DeadEvidence

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def test_evidence_is_saved_updated_read_and_forgotten(store: SQLStore) -> None:
    assert await store.dns_evidence(["a.example", "b.example"]) == {}
    first = DeadEvidence(error="nxdomain", first_at=T0, last_at=T0, lookups=1)
    await store.save_dns_evidence("a.example", first, T0 + timedelta(minutes=15))
    later = T0 + timedelta(minutes=15)
    second = DeadEvidence(error="nullmx", first_at=T0, last_at=later, lookups=2)
    await store.save_dns_evidence("a.example", second, T0 + timedelta(hours=1))
    assert await store.dns_evidence(["a.example", "b.example"]) == {
        "a.example": (second, T0 + timedelta(hours=1))
    }
    await store.forget_dns_evidence("a.example")
    await store.forget_dns_evidence("b.example")  # nothing there: no error
    assert await store.dns_evidence(["a.example"]) == {}
