"""Pruning what is no longer needed (``retention:``), in bounded batches: each
statement touches at most ``batch`` rows, each in its own short transaction, so
sending never waits long on the writer lock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import (
    attempts,
    event_cursors,
    events,
    messages,
    recipients,
)
from warmup.core.model import RecipientState
from warmup.core.settings import RetentionSettings

__all__ = ["SQLRetention"]

# Recipients whose message may still be sent (a cancelled one may be resumed).
_LIVE = (
    RecipientState.queued.value,
    RecipientState.sending.value,
    RecipientState.cancelled.value,
)
_MAX_BATCHES = 100  # per run: the next run goes on where this one stopped


class SQLRetention:
    """Pruning old relayed bodies and attempts in bounded batches."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def prune(
        self, settings: RetentionSettings, now: datetime
    ) -> tuple[int, int]:
        """Empty old relayed bodies and delete old attempts: (bodies, attempts)."""
        bodies = await self._in_batches(self._empty_bodies, settings, now)
        rows = await self._in_batches(self._old_attempts, settings, now)
        return bodies, rows

    async def prune_events(
        self,
        settings: RetentionSettings,
        consumers: Sequence[tuple[str, timedelta]],
        now: datetime,
    ) -> int:
        """Delete outcome events older than ``settings.events`` that every
        consumer (name, retry_for) has shipped, or would have given up (older
        than its retry_for); returns how many, deleted ``batch`` at a time."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(event_cursors.c.name, event_cursors.c.last_id)
            )
            shipped = {str(name): int(last) for name, last in rows.all()}
            newest = (await conn.execute(select(func.max(events.c.id)))).scalar()
        keep = [
            # A consumer without a cursor has shipped nothing yet.
            (shipped.get(name, 0), now - retry_for)
            for name, retry_for in consumers
        ]
        due = and_(
            events.c.at < now - settings.events,
            # The newest event stays: SQLite numbers the next one after the
            # highest id left, and the cursors must never see an id twice.
            events.c.id < (newest or 0),
            *(
                or_(events.c.id <= last, events.c.at < given_up)
                for last, given_up in keep
            ),
        )

        def statement(settings: RetentionSettings, now: datetime) -> Any:
            ids = (
                select(events.c.id)
                .where(due)
                .order_by(events.c.id)
                .limit(settings.batch)
            )
            return delete(events).where(events.c.id.in_(ids.scalar_subquery()))

        return await self._in_batches(statement, settings, now)

    async def _in_batches(
        self,
        statement_for: Callable[[RetentionSettings, datetime], Any],
        settings: RetentionSettings,
        now: datetime,
    ) -> int:
        total = 0
        for _ in range(_MAX_BATCHES):
            async with self.db.begin() as conn:
                done = int((await conn.execute(statement_for(settings, now))).rowcount)
            total += done
            if done < settings.batch:
                break
        return total

    @staticmethod
    def _empty_bodies(settings: RetentionSettings, now: datetime) -> Any:
        cutoff = now - settings.message_bodies
        still_needed = exists().where(
            recipients.c.message_id == messages.c.id,
            (recipients.c.state.in_(_LIVE)) | (recipients.c.updated_at >= cutoff),
        )
        due = (
            select(messages.c.id)
            .where(
                messages.c.received_at < cutoff,
                func.length(messages.c.content) > 0,
                ~still_needed,
            )
            .limit(settings.batch)
        )
        return (
            update(messages)
            .where(messages.c.id.in_(due.scalar_subquery()))
            .values(content=b"")
        )

    @staticmethod
    def _old_attempts(settings: RetentionSettings, now: datetime) -> Any:
        due = (
            select(attempts.c.id)
            .where(attempts.c.attempted_at < now - settings.attempts)
            .order_by(attempts.c.id)
            .limit(settings.batch)
        )
        return delete(attempts).where(attempts.c.id.in_(due.scalar_subquery()))
