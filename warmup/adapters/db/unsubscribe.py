"""The store's side of one-click unsubscribe: who a token names, and the
per-campaign unsubscribes (``campaign_suppressions``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.database import Database
from warmup.adapters.db.outbox import insert_recipient_events
from warmup.adapters.db.rows import suppression_row
from warmup.adapters.db.schema import campaign_suppressions, recipients, suppressions
from warmup.core.event import EventType
from warmup.core.recipients.suppression import Suppression

__all__ = ["SQLUnsubscribes"]

_CHUNK = 2000


class SQLUnsubscribes:
    """List-Unsubscribe requests and campaign-wide unsubscribes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def unsubscribe_target(self, recipient_id: int) -> tuple[str, int] | None:
        """(address, campaign id) of a recipient row, or None if there is none."""
        query = select(recipients.c.address, recipients.c.campaign_id).where(
            recipients.c.id == recipient_id
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (str(row.address), int(row.campaign_id))

    async def unsubscribe(
        self, recipient_id: int, entry: Suppression, *, campaign_id: int | None
    ) -> bool:
        """Suppress ``entry`` (in one campaign when ``campaign_id`` is given) and,
        if that is new, write the recipient's ``unsubscribed`` outcome event in the
        same transaction; False if it was already so (a repeated click)."""
        async with self.db.begin() as conn:
            if campaign_id is None:
                new = await _suppress(conn, self.db, entry)
            else:
                new = await _suppress_in(conn, self.db, campaign_id, entry)
            if new:
                await conn.execute(
                    insert_recipient_events(
                        EventType.unsubscribed,
                        entry.created_at,
                        entry.source,
                        None,
                        recipients.c.id == recipient_id,
                        reason=entry.reason,
                    )
                )
        return new

    async def add_campaign_suppression(
        self, campaign_id: int, entry: Suppression
    ) -> bool:
        """Stop mailing ``entry.address`` in one campaign; False if already so."""
        async with self.db.begin() as conn:
            return await _suppress_in(conn, self.db, campaign_id, entry)

    async def campaign_suppressed(
        self, pairs: Sequence[tuple[int, str]]
    ) -> set[tuple[int, str]]:
        """Which (campaign id, address) pairs are unsubscribed from that campaign."""
        wanted = set(pairs)
        addresses = sorted({address for _, address in wanted})
        found: set[tuple[int, str]] = set()
        async with self.db.connect() as conn:
            for start in range(0, len(addresses), _CHUNK):
                query = select(
                    campaign_suppressions.c.campaign_id,
                    campaign_suppressions.c.address,
                ).where(
                    campaign_suppressions.c.address.in_(
                        addresses[start : start + _CHUNK]
                    )
                )
                rows = (await conn.execute(query)).all()
                found.update((int(c), str(a)) for c, a in rows)
        return found & wanted

    async def any_campaign_suppressions(self) -> bool:
        query = select(campaign_suppressions.c.id).limit(1)
        async with self.db.connect() as conn:
            return (await conn.execute(query)).first() is not None


async def _suppress(conn: AsyncConnection, db: Database, entry: Suppression) -> bool:
    statement = (
        db.insert(suppressions)
        .values(**suppression_row(entry))
        .on_conflict_do_nothing(index_elements=["address"])
        .returning(suppressions.c.address)
    )
    return bool((await conn.execute(statement)).all())


async def _suppress_in(
    conn: AsyncConnection, db: Database, campaign_id: int, entry: Suppression
) -> bool:
    statement = (
        db.insert(campaign_suppressions)
        .values(
            campaign_id=campaign_id,
            address=entry.address,
            reason=entry.reason,
            source=entry.source,
            created_at=entry.created_at,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "address"])
        .returning(campaign_suppressions.c.id)
    )
    return bool((await conn.execute(statement)).all())
