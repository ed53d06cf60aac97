"""The global suppression list: lookups, additions, removals, listing."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from functools import partial

from sqlalchemy import delete, func, select

from warmup.adapters.db.database import Database
from warmup.adapters.db.rows import require_aware, suppression_row
from warmup.adapters.db.schema import suppressions
from warmup.core.model import SuppressionKind
from warmup.core.recipients.suppression import Suppression

__all__ = ["SQLSuppressions"]

_CHUNK = 5000  # rows per IN (...) lookup


# SQLite's limit on a statement's parameters is 32,766 (since 3.32).
_SQLITE_LOOKUP = (
    f"SELECT {suppressions.c.address.name} FROM {suppressions.name} "
    f"WHERE {suppressions.c.address.name} IN "
)


def _suppressed_sqlite(keys: Sequence[str], conn: sqlite3.Connection) -> set[str]:
    """:meth:`SQLSuppressions.suppressed_keys` on the sqlite3 connection."""
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"{_SQLITE_LOOKUP}({marks})", chunk).fetchall()
        found.update(row[0] for row in rows)
    return found


class SQLSuppressions:
    """Addresses (and ``@domain`` entries) never to be mailed."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def suppressed_keys(self, keys: Sequence[str]) -> set[str]:
        if self.db.dialect == "sqlite":  # before every claimed batch: one trip
            return await self.db.sqlite_call(partial(_suppressed_sqlite, keys))
        found: set[str] = set()
        async with self.db.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                result = await conn.execute(
                    select(suppressions.c.address).where(
                        suppressions.c.address.in_(chunk)
                    )
                )
                found.update(result.scalars())
        return found

    async def add_suppressions(self, entries: Sequence[Suppression]) -> int:
        if not entries:
            return 0
        for entry in entries:
            require_aware(entry.created_at)
        rows = [suppression_row(e) for e in entries]
        statement = self.db.insert(suppressions).on_conflict_do_nothing(
            index_elements=["address"]
        )
        return await self.db.insert_counted(statement, rows)

    async def remove_suppressions(self, addresses: Sequence[str]) -> int:
        removed = 0
        async with self.db.begin() as conn:
            for start in range(0, len(addresses), _CHUNK):
                chunk = list(addresses[start : start + _CHUNK])
                result = await conn.execute(
                    delete(suppressions).where(suppressions.c.address.in_(chunk))
                )
                removed += result.rowcount
        return removed

    async def iter_suppressions(
        self,
        *,
        reason: str | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Suppression]:
        query = select(suppressions).order_by(suppressions.c.id)
        if reason is not None:
            query = query.where(suppressions.c.reason == reason)
        if source is not None:
            query = query.where(suppressions.c.source == source)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.connect() as conn:
            stream = await conn.stream(query.execution_options(yield_per=5000))
            async for row in stream:
                yield Suppression(
                    address=row.address,
                    kind=SuppressionKind(row.kind),
                    reason=row.reason,
                    source=row.source,
                    created_at=row.created_at,
                )

    async def count_suppressions(self) -> int:
        async with self.db.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(suppressions))
            return int(count.scalar_one())
