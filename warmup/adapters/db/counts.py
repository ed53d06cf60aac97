"""Recipient counts without scanning the queue (table recipient_counts).

Triggers on recipients keep the counts (migration 0012); a count is the sum
of a key's rows. On SQLite the store's inserts add their own counts instead
of a per-row insert trigger (migration 0013): the list's bulk insert with
:func:`add`, the relay's writer with :func:`add_rows`, one upsert per batch
and key. On PostgreSQL every writing transaction has its own rows, so
:func:`compact` (the dispatcher's maintenance) folds them into one per key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from warmup.adapters.db.schema import recipient_counts

__all__ = ["add", "add_rows", "add_rows_sqlite", "compact", "counted"]

# A concurrent fold may have written a key's slot 0 since this one's snapshot:
# then the two sums (of disjoint rows) add up.
_COMPACT = text(
    "WITH gone AS (DELETE FROM recipient_counts "
    "RETURNING campaign_id, isp, state, n) "
    "INSERT INTO recipient_counts (campaign_id, isp, state, slot, n) "
    "SELECT campaign_id, isp, state, 0, sum(n) FROM gone "
    "GROUP BY campaign_id, isp, state HAVING sum(n) <> 0 "
    "ON CONFLICT (campaign_id, isp, state, slot) "
    "DO UPDATE SET n = recipient_counts.n + excluded.n"
)
_ADD_SQL = (
    "INSERT INTO recipient_counts (campaign_id, isp, state, slot, n) "
    "VALUES (:campaign_id, :isp, :state, 0, :n) "
    "ON CONFLICT (campaign_id, isp, state, slot) "
    "DO UPDATE SET n = recipient_counts.n + excluded.n"
)
_ADD = text(_ADD_SQL)


def counted(*keys: Any) -> Any:
    """``SELECT keys..., sum(n)`` over recipient_counts, grouped by the keys;
    keys that have none left are left out."""
    total = func.sum(recipient_counts.c.n)
    return select(*keys, total.label("n")).group_by(*keys).having(total != 0)


async def compact(conn: AsyncConnection) -> None:
    """PostgreSQL: one row per key again; rows written since are kept (a
    concurrent compaction or writer never sees a key counted twice or lost).
    SQLite keeps one row per key (zero rows are left out by :func:`counted`)."""
    await conn.execute(_COMPACT)


async def add(
    conn: AsyncConnection, campaign_id: int, isp: str | None, state: str, n: int
) -> None:
    """SQLite: ``n`` more recipients under a key (slot 0), in the caller's
    transaction: what the insert trigger did row by row before 0013."""
    if n:
        await conn.execute(
            _ADD, {"campaign_id": campaign_id, "isp": isp or "", "state": state, "n": n}
        )


def add_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """SQLite: count recipient rows just inserted (all of them: no conflict
    clause), one upsert per key, in the caller's (synchronous) transaction.
    PostgreSQL's statement-level trigger counts them there."""
    if conn.dialect.name != "sqlite" or not rows:
        return
    conn.execute(_ADD, _added(rows))


def add_rows_sqlite(cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
    """:func:`add_rows` on a sqlite3 cursor (the relay's SQLite writer)."""
    if rows:
        cursor.executemany(_ADD_SQL, _added(rows))


def _added(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = Counter((row["campaign_id"], row["isp"] or "", row["state"]) for row in rows)
    return [
        {"campaign_id": campaign_id, "isp": isp, "state": state, "n": n}
        for (campaign_id, isp, state), n in keys.items()
    ]
