"""The relay's group commit on SQLite: the batch's hot statements on sqlite3 itself.

:func:`~warmup.adapters.db.relay_store._write_batch` runs every statement
through SQLAlchemy Core, ~0.6 ms of Python per batch of two messages (cache-key
generation, parameter processing, result set-up), on the writer thread, where it
also holds the GIL the event loop needs. Here the same transaction sends the
suppression lookup, the ``messages`` and ``recipients`` inserts and the counts'
upsert to the sqlite3 connection under the SQLAlchemy one, with SQL compiled
once from the schema's tables by SQLAlchemy and instants bound as
``UTCDateTime`` binds them; the rare statements (a new campaign, the suppressed
recipients' events) stay on SQLAlchemy, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from warmup.adapters.db import counts
from warmup.adapters.db.outbox import insert_recipient_events
from warmup.adapters.db.relay_rows import message_row, recipient_rows
from warmup.adapters.db.schema import messages, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import FiledMessage, RelayedMessage
from warmup.core.event import EventType
from warmup.core.model import RecipientState
from warmup.core.recipients.suppression import lookup_keys

__all__ = ["SQLiteBatchWriter"]

_CHUNK = 500  # keys per IN (...) lookup (SQLite's default limit is 32,766)
_SUPPRESSED = "SELECT address FROM suppressions WHERE address IN ({})"


class SQLiteBatchWriter:
    """Writes a batch as ``relay_store._write_batch`` does, on SQLite."""

    def __init__(self, store: SQLStore) -> None:
        self._store = store
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._bind: Callable[[datetime], Any] = store.database.instant_binder()

    def write(
        self,
        conn: Connection,
        batch: list[RelayedMessage],
        ids: dict[str, int],
    ) -> list[FiledMessage]:
        """The batch in the caller's transaction; ``ids``: every campaign's id."""
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            found = self._suppressed(cursor, batch)
            message_ids = []
            for message in batch:
                row = message_row(message, ids[message.campaign])
                cursor.execute(*self._insert("messages", row))
                message_ids.append(int(cursor.lastrowid))
            rows, filed = recipient_rows(batch, ids, message_ids, found)
            if rows:
                sql, names = self._compile("recipients", rows[0])
                cursor.executemany(sql, [self._values(row, names) for row in rows])
                counts.add_rows_sqlite(cursor, rows)
        finally:
            cursor.close()
        if any(f.suppressed for f in filed):  # their outcome events: rare
            conn.execute(
                insert_recipient_events(
                    EventType.suppressed,
                    batch[0].received_at,
                    "relay",
                    None,
                    recipients.c.message_id.in_(message_ids),
                    recipients.c.state == RecipientState.suppressed.value,
                )
            )
        return filed

    def _suppressed(self, cursor: Any, batch: list[RelayedMessage]) -> set[str]:
        keys = sorted(
            lookup_keys(a.address for message in batch for a, _ in message.recipients)
        )
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            cursor.execute(_SUPPRESSED.format(", ".join("?" * len(chunk))), chunk)
            found.update(address for (address,) in cursor.fetchall())
        return found

    def _insert(self, table: str, row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        sql, names = self._compile(table, row)
        return sql, self._values(row, names)

    def _compile(self, table: str, row: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        """``INSERT INTO table`` for ``row``'s keys, compiled by SQLAlchemy once."""
        found = self._compiled.get(table)
        if found is None:
            target = messages if table == "messages" else recipients
            compiled = insert(target).compile(
                dialect=self._store.engine.dialect, column_keys=list(row)
            )
            found = (compiled.string, tuple(compiled.positiontup or ()))
            self._compiled[table] = found
        return found

    def _values(self, row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
        bind = self._bind
        return tuple(
            bind(value) if isinstance(value, datetime) else value
            for value in (row[name] for name in names)
        )
