"""Dead-domain DNS evidence in the store (rules in core/recipients/dns_evidence.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import dns_evidence
from warmup.core.recipients.dns_evidence import DeadEvidence

__all__ = ["SQLDNSEvidence"]

_CHUNK = 500


class SQLDNSEvidence:
    """Evidence rows shared by every node, so a restart or another node keeps it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def dns_evidence(
        self, domains: Sequence[str]
    ) -> dict[str, tuple[DeadEvidence, datetime]]:
        """The evidence and next lookup instant of those ``domains`` that have any."""
        found: dict[str, tuple[DeadEvidence, datetime]] = {}
        async with self.db.connect() as conn:
            for start in range(0, len(domains), _CHUNK):
                chunk = list(domains[start : start + _CHUNK])
                query = select(dns_evidence).where(dns_evidence.c.domain.in_(chunk))
                for row in (await conn.execute(query)).all():
                    evidence = DeadEvidence(
                        error=row.error,
                        first_at=row.first_at,
                        last_at=row.last_at,
                        lookups=row.lookups,
                    )
                    found[str(row.domain)] = (evidence, row.next_check_at)
        return found

    async def save_dns_evidence(
        self, domain: str, evidence: DeadEvidence, next_check_at: datetime
    ) -> None:
        values = {
            "error": evidence.error,
            "first_at": evidence.first_at,
            "last_at": evidence.last_at,
            "lookups": evidence.lookups,
            "next_check_at": next_check_at,
        }
        statement = (
            self.db.insert(dns_evidence)
            .values(domain=domain, **values)
            .on_conflict_do_update(index_elements=["domain"], set_=values)
        )
        async with self.db.begin() as conn:
            await conn.execute(statement)

    async def forget_dns_evidence(self, domain: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                delete(dns_evidence).where(dns_evidence.c.domain == domain)
            )
