"""The store's side of one-click unsubscribe: who a token names, and the
per-campaign unsubscribes (``campaign_suppressions``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from warmup.adapters.db.failure import translated
from warmup.adapters.db.feedback import FeedbackOps
from warmup.adapters.db.schema import campaign_suppressions, recipients
from warmup.core.suppression import Suppression

__all__ = ["UnsubscribeOps"]

_CHUNK = 2000


class UnsubscribeOps(FeedbackOps):
    """Mixed into SQLStore."""

    @translated("finding the unsubscribing recipient")
    async def unsubscribe_target(self, recipient_id: int) -> tuple[str, int] | None:
        """(address, campaign id) of a recipient row, or None if there is none."""
        query = select(recipients.c.address, recipients.c.campaign_id).where(
            recipients.c.id == recipient_id
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (str(row.address), int(row.campaign_id))

    @translated("adding a campaign unsubscribe")
    async def add_campaign_suppression(
        self, campaign_id: int, entry: Suppression
    ) -> bool:
        """Stop mailing ``entry.address`` in one campaign; False if already so."""
        statement = (
            self._insert(campaign_suppressions)
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
        async with self._begin() as conn:
            added = (await conn.execute(statement)).all()
        return bool(added)

    @translated("checking campaign unsubscribes")
    async def campaign_suppressed(
        self, pairs: Sequence[tuple[int, str]]
    ) -> set[tuple[int, str]]:
        """Which (campaign id, address) pairs are unsubscribed from that campaign."""
        wanted = set(pairs)
        addresses = sorted({address for _, address in wanted})
        found: set[tuple[int, str]] = set()
        async with self.engine.connect() as conn:
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

    @translated("checking campaign unsubscribes")
    async def any_campaign_suppressions(self) -> bool:
        query = select(campaign_suppressions.c.id).limit(1)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None
