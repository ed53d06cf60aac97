"""Routing the queue: queued recipients per ISP, domains not yet routed, and
what DNS decided for them (route, fail, defer)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from warmup.adapters.db.counts import compact, counted
from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import (
    insert_recipient_events,
)
from warmup.adapters.db.rows import QUEUED, state_is, suppression_row
from warmup.adapters.db.schema import (
    dns_evidence,
    recipient_counts,
    recipients,
    suppressions,
)
from warmup.core.event import EventType
from warmup.core.model import RecipientState
from warmup.core.recipients.suppression import make_suppression

__all__ = ["SQLRouting"]


class SQLRouting:
    """Which ISP a queued recipient goes to."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def queued_isps(self) -> dict[str, int]:
        """Queued recipients per ISP (routed ones only), from the counts."""
        isp = recipient_counts.c.isp
        query = counted(isp).where(recipient_counts.c.state == QUEUED, isp != "")
        async with self.db.connect() as conn:
            return {str(isp): int(n) for isp, n in (await conn.execute(query)).all()}

    async def compact_recipient_counts(self) -> None:
        """Fold the counts' rows per transaction (warmup.adapters.db.counts);
        SQLite has one row per key already: no transaction at all."""
        if self.db.dialect != "postgresql":
            return
        async with self.db.begin() as conn:
            await compact(conn)

    async def unrouted_domains(self, limit: int = 500) -> list[str]:
        query = (
            select(recipients.c.domain)
            .where(state_is(QUEUED), recipients.c.isp.is_(None))
            .distinct()
            .limit(limit)
        )
        async with self.db.connect() as conn:
            return [str(d) for d in (await conn.execute(query)).scalars()]

    async def route_domain(self, domain: str, isp: str, now: datetime) -> int:
        statement = (
            update(recipients)
            .where(recipients.c.domain == domain, recipients.c.isp.is_(None))
            .values(isp=isp, updated_at=now)
        )
        async with self.db.begin() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def fail_domain(self, domain: str, reply: str, now: datetime) -> int:
        """A domain that cannot receive mail: its queued recipients bounce."""
        dead = (
            recipients.c.domain == domain,
            recipients.c.isp.is_(None),
            state_is(QUEUED),
        )
        events = insert_recipient_events(
            EventType.bounced, now, "dns", reply, *dead, reason="hostunknown"
        )
        statement = (
            update(recipients)
            .where(*dead)
            .values(
                state=RecipientState.bounced.value, last_reply=reply, updated_at=now
            )
        )
        entry = make_suppression(
            "@" + domain, reason="hostunknown", source="dns", now=now
        )
        async with self.db.begin() as conn:
            await conn.execute(events)
            count = int((await conn.execute(statement)).rowcount)
            await conn.execute(
                self.db.insert(suppressions).on_conflict_do_nothing(
                    index_elements=["address"]
                ),
                [suppression_row(entry)],
            )
            # The evidence did its work: the suppression now speaks for the domain.
            forget = delete(dns_evidence).where(dns_evidence.c.domain == domain)
            await conn.execute(forget)
            return count

    async def defer_domain(
        self, domain: str, reply: str, until: datetime, now: datetime
    ) -> int:
        """A domain that looks dead but is not confirmed: its recipients wait."""
        statement = (
            update(recipients)
            .where(
                recipients.c.domain == domain,
                recipients.c.isp.is_(None),
                state_is(QUEUED),
            )
            .values(next_attempt_at=until, last_reply=reply, updated_at=now)
        )
        async with self.db.begin() as conn:
            return int((await conn.execute(statement)).rowcount)
