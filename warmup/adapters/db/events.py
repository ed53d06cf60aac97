"""The outbox of outcome events (see warmup.core.event) read back, and the
cursors of the consumers that ship them (accounting log, webhooks). Writing them
is warmup.adapters.db.outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import campaigns, event_cursors, events, nodes
from warmup.app.store_rows import EventRow
from warmup.core.event import DeliveryCursor, EventType

__all__ = ["SQLEvents"]


def _event(row: Any) -> EventRow:
    return {
        "id": int(row.id),
        "type": row.type,
        "at": row.at,
        "campaign": row.campaign,
        "recipient": row.recipient,
        "message_id": row.message_id,
        "ip": row.ip,
        "isp": row.isp,
        "reply": row.reply,
        "status": row.status,
        "reason": row.reason,
        "source": row.source,
    }


class SQLEvents:
    """The outcome events outbox and the delivery cursors that read it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def read_events(
        self,
        *,
        after: int = 0,
        since: datetime | None = None,
        types: Sequence[str] = (),
        limit: int = 1000,
    ) -> list[EventRow]:
        """Events with an id over ``after`` (and at or after ``since``, of
        ``types``), oldest first."""
        query = select(events).where(events.c.id > after)
        if since is not None:
            query = query.where(events.c.at >= since)
        if types:
            query = query.where(events.c.type.in_(list(types)))
        query = query.order_by(events.c.id).limit(limit)
        async with self.db.connect() as conn:
            return [_event(row) for row in (await conn.execute(query)).all()]

    async def record_refused(
        self, campaign_id: int, addresses: Sequence[str], now: datetime, source: str
    ) -> None:
        """``suppressed`` events for addresses refused before they were queued
        (they have no recipient row; the refusal is their only record)."""
        if not addresses:
            return
        name = (
            select(campaigns.c.name)
            .where(campaigns.c.id == campaign_id)
            .scalar_subquery()
        )
        rows = [
            {
                "type": EventType.suppressed.value,
                "at": now,
                "recipient": address,
                "reason": "suppressed",
                "source": source,
            }
            for address in addresses
        ]
        async with self.db.begin() as conn:
            await conn.execute(events.insert().values(campaign=name), rows)

    async def last_event_id(self) -> int:
        async with self.db.connect() as conn:
            found = await conn.execute(select(events.c.id).order_by(events.c.id.desc()))
            return int(found.scalars().first() or 0)

    async def cursor(self, name: str) -> DeliveryCursor:
        """The consumer's cursor; a new consumer starts at the first event."""
        query = select(event_cursors).where(event_cursors.c.name == name)
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return DeliveryCursor(name=name)
        return DeliveryCursor(
            name=name,
            last_id=int(row.last_id),
            failures=int(row.failures),
            next_try_at=row.next_try_at,
            failing_since=row.failing_since,
        )

    async def save_cursor(
        self, cursor: DeliveryCursor, error: str | None = None, holder: str = ""
    ) -> bool:
        """Save how far the consumer got; with ``holder``, only while that
        shipper still holds the cursor's lease (:meth:`lease_cursor`): False
        when another took it over (it ships the batch again: at least once)."""
        values = {
            "last_id": cursor.last_id,
            "failures": cursor.failures,
            "next_try_at": cursor.next_try_at,
            "failing_since": cursor.failing_since,
            "last_error": error,
        }
        if holder:
            statement: Any = (
                update(event_cursors)
                .where(
                    event_cursors.c.name == cursor.name,
                    event_cursors.c.holder == holder,
                )
                .values(**values)
            )
        else:
            statement = self.db.insert(event_cursors).values(name=cursor.name, **values)
            statement = statement.on_conflict_do_update(
                index_elements=["name"], set_=values
            )
        async with self.db.begin() as conn:
            done = (await conn.execute(statement)).rowcount
        return bool(done) or not holder

    async def lease_cursor(
        self, name: str, holder: str, now: datetime, lease_for: timedelta
    ) -> bool:
        """Take or renew the lease on the consumer's cursor for ``lease_for``:
        one shipper per consumer across every node on the database. False while
        another holder's lease runs and its process is alive (``nodes``)."""
        create = (
            self.db.insert(event_cursors)
            .values(name=name, last_id=0, failures=0)
            .on_conflict_do_nothing()
        )
        take = (
            update(event_cursors)
            .where(
                event_cursors.c.name == name,
                or_(
                    event_cursors.c.holder.is_(None),
                    event_cursors.c.holder == holder,
                    event_cursors.c.held_until < now,
                    # Its process is gone: its heartbeat lapsed (a dead process
                    # on a node's own machine is marked so at the next beat).
                    ~exists().where(
                        nodes.c.claimer == event_cursors.c.holder,
                        nodes.c.alive_until >= now,
                    ),
                ),
            )
            .values(holder=holder, held_until=now + lease_for)
        )
        async with self.db.begin() as conn:
            await conn.execute(create)
            return bool((await conn.execute(take)).rowcount)

    async def release_cursor(self, name: str, holder: str) -> None:
        """Give the lease up (at shutdown): another node takes over at once."""
        statement = (
            update(event_cursors)
            .where(event_cursors.c.name == name, event_cursors.c.holder == holder)
            .values(holder=None, held_until=None)
        )
        async with self.db.begin() as conn:
            await conn.execute(statement)

    async def backlog(self, names: Sequence[str]) -> dict[str, int]:
        """Events each consumer has still to ship."""
        last = await self.last_event_id()
        return {name: last - (await self.cursor(name)).last_id for name in names}
