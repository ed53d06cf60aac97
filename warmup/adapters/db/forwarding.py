"""The relayed recipients behind ``bounced`` and ``expired`` events, for
warmup.app.forward (relay.forward_bounces): one query per batch of events."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from warmup.adapters.db.failure import describe
from warmup.adapters.db.schema import events, messages, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.forward import Returned
from warmup.core.errors import StoreError
from warmup.core.event import EventType
from warmup.core.relay.message import MAX_HEADER_BYTES

__all__ = ["SQLForwarding"]

# Enough of the stored message for its header section (the relay refuses more).
_HEAD = MAX_HEADER_BYTES + 4


class SQLForwarding:
    def __init__(self, store: SQLStore) -> None:
        self._store = store

    async def returned_mail(self, event_ids: Sequence[int]) -> list[Returned]:
        if not event_ids:
            return []
        reported = messages.alias("reported")
        query = (
            select(
                events.c.id,
                events.c.type,
                events.c.reply,
                events.c.status,
                events.c.at,
                recipients.c.id.label("rid"),
                recipients.c.address,
                messages.c.mail_from,
                func.substr(messages.c.content, 1, _HEAD).label("head"),
                messages.c.received_at,
                messages.c.dsn_for,
                reported.c.id.label("reported"),
            )
            .select_from(
                events.join(recipients, recipients.c.id == events.c.recipient_id)
                .join(messages, messages.c.id == recipients.c.message_id)
                .outerjoin(reported, reported.c.dsn_for == recipients.c.id)
            )
            .where(
                events.c.id.in_(list(event_ids)),
                events.c.type.in_([EventType.bounced.value, EventType.expired.value]),
            )
            .order_by(events.c.id)
        )
        try:
            async with self._store.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except SQLAlchemyError as exc:
            raise StoreError("reading bounces to forward", describe(exc)) from exc
        return [
            Returned(
                event_id=int(row.id),
                expired=row.type == EventType.expired.value,
                recipient_id=int(row.rid),
                recipient=row.address,
                reply=row.reply,
                status=row.status,
                at=row.at,
                mail_from=row.mail_from,
                content=bytes(row.head or b""),
                received_at=row.received_at,
                is_dsn=row.dsn_for is not None,
                reported=row.reported is not None,
            )
            for row in rows
        ]
