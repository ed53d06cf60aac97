"""Pruning what is no longer needed (``retention:``), in bounded batches: each
statement touches at most ``batch`` rows, each in its own short transaction, so
sending never waits long on the writer lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select, update

from warmup.adapters.db.database import Database
from warmup.adapters.db.schema import attempts, messages, recipients
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
