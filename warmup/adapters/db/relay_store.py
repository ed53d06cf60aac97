"""SQLRelayStore: the relay's RelayStore over an open SQLStore.

Group commit: messages handed in while a write is under way are written together
in the next transaction — campaigns (created without a template if new), one
suppression lookup for all their recipients, the ``messages`` rows, a
``recipients`` row per recipient (``queued``, or ``suppressed`` so that the
campaign summary counts it). Each caller returns only once its transaction has
committed (fsynced on SQLite when ``durable``), so the relay's 250 still means
"on disk"; parallel sessions share one commit instead of queueing for the lock.
If a batch fails, its messages are tried one by one, so one bad message cannot
take the others down with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, create_engine, event, insert, select

from warmup.adapters.db import counts
from warmup.adapters.db.connect import sqlite_pragmas
from warmup.adapters.db.failure import DATABASE_ERRORS, describe
from warmup.adapters.db.relay_rows import (
    campaign_ids,
    campaign_statements,
    message_row,
    recipient_rows,
    suppressed_events,
)
from warmup.adapters.db.relay_sqlite import SQLiteBatchWriter, WriterThread
from warmup.adapters.db.schema import messages, recipients, suppressions
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import FiledMessage, RelayedMessage
from warmup.core.errors import StoreError
from warmup.core.recipients.suppression import lookup_keys

__all__ = ["SQLRelayStore"]

logger = logging.getLogger(__name__)
_CHUNK = 5000  # keys per IN (...) lookup
_Waiting = tuple[RelayedMessage, "asyncio.Future[FiledMessage]"]


class SQLRelayStore:
    def __init__(
        self, store: SQLStore, *, durable: bool = True, max_batch: int = 500
    ) -> None:
        self._store = store
        self._durable = durable
        self._max_batch = max_batch
        self._campaigns: dict[str, int] = {}  # campaigns are never deleted
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._sync = _sync_sqlite(store)
        self._fast = (
            SQLiteBatchWriter(store, self._sync, durable=durable)
            if self._sync is not None
            else None
        )
        # SQLite: the writes run here, one batch at a time, on one connection.
        self._thread = WriterThread("warmup-relay-writer")

    async def commit_message(self, message: RelayedMessage) -> FiledMessage:
        future: asyncio.Future[FiledMessage] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append((message, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        # A caller that gives up (its client hung up) does not stop the write:
        # the message is in the batch; its cancelled future is left unsettled.
        return await future

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                filed = await self._write([m for m, _ in batch])
            except StoreError as exc:
                if len(batch) == 1:
                    _settle(batch, exc)
                    continue
                logger.warning("a batch of %d messages failed: one by one", len(batch))
                for single in batch:
                    try:
                        _settle([single], await self._write([single[0]]))
                    except StoreError as error:
                        _settle([single], error)
                continue
            _settle(batch, filed)

    async def _write(self, batch: list[RelayedMessage]) -> list[FiledMessage]:
        known = dict(self._campaigns)
        try:
            if self._sync is not None:
                filed, ids = await self._write_sqlite(batch, known)
            else:
                async with self._store.database.begin(durable=self._durable) as conn:
                    filed, ids = await conn.run_sync(
                        _write_batch, self._store, batch, known
                    )
        except DATABASE_ERRORS as exc:
            raise StoreError("accepting messages", describe(exc)) from exc
        except Exception as exc:  # e.g. a driver's UnicodeEncodeError: no caller
            # may be left waiting for a writer that died.
            raise StoreError("accepting messages", repr(exc)) from exc
        self._campaigns.update(ids)  # committed: remember them
        return filed

    async def _write_sqlite(
        self, batch: list[RelayedMessage], known: dict[str, int]
    ) -> tuple[list[FiledMessage], dict[str, int]]:
        """The whole transaction in one call on a worker thread, over a plain
        sqlite3 connection: aiosqlite would hop to its thread and back for every
        statement. Under the store's writer lock, so this process's writers
        still queue in order instead of in SQLite's busy handler."""
        assert self._fast is not None
        write = self._fast.write
        async with self._store.database.writer_lock():
            return await self._thread.run(lambda: write(batch, known))

    def close(self) -> None:
        """Close the SQLite writer's connection and thread (idempotent)."""
        if self._sync is not None:
            # after any write still queued, on the thread that used it
            self._thread.stop(self._fast.close if self._fast is not None else None)
            self._sync.dispose()


def _sync_sqlite(store: SQLStore) -> Engine | None:
    """A synchronous engine on the store's SQLite file (None on PostgreSQL, whose
    async driver makes no thread hops) for :class:`SQLiteBatchWriter`, which keeps
    its one connection open (a new one per batch costs more than the batch:
    SQLite reads the schema again) and opens its transactions itself."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    engine = create_engine(url.set(drivername="sqlite"), pool_size=1, max_overflow=0)
    event.listen(engine, "connect", sqlite_pragmas)
    return engine


def _write_batch(
    conn: Connection,
    store: SQLStore,
    batch: list[RelayedMessage],
    known: dict[str, int],
) -> tuple[list[FiledMessage], dict[str, int]]:
    """Campaigns, suppression lookup, messages, recipients (and the suppressed
    ones' events) in the caller's transaction; the filed results and the
    campaign ids used."""
    ids = campaign_ids(batch, known, lambda message: _campaign(conn, store, message))
    found = _suppressed(conn, batch)
    inserted = conn.execute(
        insert(messages).returning(messages.c.id, sort_by_parameter_order=True),
        [message_row(m, ids[m.campaign]) for m in batch],
    )
    message_ids = [int(i) for i in inserted.scalars()]
    rows, filed = recipient_rows(batch, ids, message_ids, found)
    if rows:
        conn.execute(insert(recipients), rows)
        counts.add_rows(conn, rows)  # SQLite; PostgreSQL's trigger counts
    if any(f.suppressed for f in filed):  # their outcome events
        conn.execute(suppressed_events(batch, message_ids))
    return filed, ids


def _campaign(conn: Connection, store: SQLStore, message: RelayedMessage) -> int:
    query, create = campaign_statements(store.database, message)
    found = conn.execute(query).scalar()
    if found is None:
        conn.execute(create)
        found = conn.execute(query).scalar_one()
    return int(found)


def _settle(
    batch: Sequence[_Waiting], outcome: list[FiledMessage] | StoreError
) -> None:
    for index, (_, future) in enumerate(batch):
        if future.done():  # its caller was cancelled
            continue
        if isinstance(outcome, StoreError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[index])


def _suppressed(conn: Connection, batch: list[RelayedMessage]) -> set[str]:
    keys = sorted(
        lookup_keys(a.address for message in batch for a, _ in message.recipients)
    )
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        query = select(suppressions.c.address).where(
            suppressions.c.address.in_(keys[start : start + _CHUNK])
        )
        found.update(conn.execute(query).scalars())
    return found
