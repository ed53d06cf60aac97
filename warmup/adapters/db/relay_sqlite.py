"""The relay's group commit on SQLite: the whole transaction on sqlite3 itself.

:func:`~warmup.adapters.db.relay_store._write_batch` runs every statement
through SQLAlchemy Core: ~0.6 ms of Python per batch of two messages (its
transaction, cache keys, parameter processing, result set-up) on the writer
thread, where it also holds the GIL the event loop needs. Here the same
transaction (``BEGIN IMMEDIATE`` … ``COMMIT``, fsynced when ``durable``) runs on
the sqlite3 connection under the writer's engine, kept open: the same statements,
their SQL compiled by SQLAlchemy from the schema's tables (once for the hot
ones: the suppression lookup, the ``messages`` and ``recipients`` inserts, the
counts' upsert; at each use for the rare ones: a new campaign, the suppressed
recipients' events), instants bound as ``UTCDateTime`` binds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, insert

from warmup.adapters.db import counts
from warmup.adapters.db.relay_rows import (
    campaign_ids,
    campaign_statements,
    message_row,
    recipient_rows,
    suppressed_events,
)
from warmup.adapters.db.schema import messages, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import FiledMessage, RelayedMessage
from warmup.core.recipients.suppression import lookup_keys

__all__ = ["SQLiteBatchWriter", "WriterThread"]

_CHUNK = 500  # keys per IN (...) lookup (SQLite's default limit is 32,766)
_SUPPRESSED = "SELECT address FROM suppressions WHERE address IN ({})"
_PLAIN = (str, int, float, bytes, type(None))
T = TypeVar("T")


class WriterThread:
    """One thread that runs the jobs it is handed, in order.

    ``run_in_executor`` costs a ``concurrent.futures`` future, its condition and
    the chaining of two futures per call, each end taking the GIL several times
    (~15 % of the relay's event-loop time in a py-spy profile); here a job goes
    over a SimpleQueue and its outcome comes back with one
    ``call_soon_threadsafe``. A daemon thread: at exit, a write cut short was
    never answered 250.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Callable[[], object] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    async def run(self, job: Callable[[], T]) -> T:
        """``job()`` on the thread: its result, or its exception raised here. A
        caller that is cancelled does not stop the job."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name=self.name, daemon=True
            )
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def work() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (job(), None)
            except BaseException as exc:  # handed to the caller, as executors do
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                loop.call_soon_threadsafe(_settle, future, *outcome)

        self._queue.put(work)
        return await future

    def stop(
        self, last: Callable[[], object] | None = None, *, wait: float = 60.0
    ) -> None:
        """Run ``last`` on the thread after the jobs queued, and wait for it (at
        most ``wait`` seconds: a write stuck on a hung disk does not hold the
        exit; SQLite's busy timeout is 10 s)."""
        thread, self._thread = self._thread, None
        if thread is None:
            if last is not None:
                last()
            return
        if last is not None:
            self._queue.put(last)
        self._queue.put(None)
        thread.join(wait)

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            job()


def _settle(
    future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    if future.done():  # its caller was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SQLiteBatchWriter:
    """Writes a batch as ``relay_store._write_batch`` does, on SQLite; to be
    used from one thread at a time (the relay's writer thread)."""

    def __init__(self, store: SQLStore, engine: Engine, *, durable: bool) -> None:
        self._store = store
        self._engine = engine
        self._durable = durable
        self._connection: Any = None  # the pool's, kept (see _driver)
        self._compiled: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._bind: Callable[[datetime], Any] = store.database.instant_binder()
        self._bound: dict[datetime, Any] = {}  # this batch's instants, bound

    def write(
        self, batch: list[RelayedMessage], known: dict[str, int]
    ) -> tuple[list[FiledMessage], dict[str, int]]:
        """One transaction: the filed results and the campaign ids used."""
        driver = self._driver()
        self._bound.clear()
        cursor = driver.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                ids = campaign_ids(
                    batch, known, lambda message: self._campaign(cursor, message)
                )
                filed = self._rows(cursor, batch, ids)
                cursor.execute("COMMIT")
            except BaseException:
                if driver.in_transaction:
                    driver.rollback()
                raise
        finally:
            cursor.close()
        return filed, ids

    def close(self) -> None:
        """Give the connection back (on the thread that used it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def synchronous(self) -> int:
        """PRAGMA synchronous on the writer's connection (2: FULL, 1: NORMAL)."""
        return int(self._driver().execute("PRAGMA synchronous").fetchone()[0])

    def _driver(self) -> Any:
        """The sqlite3 connection (the engine's connect hook has set it up)."""
        if self._connection is None:
            connection = self._engine.raw_connection()
            driver: Any = connection.driver_connection
            if self._durable:  # fsync the WAL at every commit (connect: NORMAL)
                driver.execute("PRAGMA synchronous=FULL")
            self._connection = connection
        return self._connection.driver_connection

    def _rows(
        self, cursor: Any, batch: list[RelayedMessage], ids: dict[str, int]
    ) -> list[FiledMessage]:
        found = self._suppressed(cursor, batch)
        message_ids = []
        for message in batch:
            row = message_row(message, ids[message.campaign])
            sql, names = self._insert("messages", row)
            cursor.execute(sql, self._values(row, names))
            message_ids.append(int(cursor.lastrowid))
        rows, filed = recipient_rows(batch, ids, message_ids, found)
        if rows:
            sql, names = self._insert("recipients", rows[0])
            cursor.executemany(sql, [self._values(row, names) for row in rows])
            counts.add_rows_sqlite(cursor, rows)
        if any(f.suppressed for f in filed):  # their outcome events: rare
            self._execute(cursor, suppressed_events(batch, message_ids))
        return filed

    def _campaign(self, cursor: Any, message: RelayedMessage) -> int:
        """The campaign's id, the row made without a template if new."""
        query, create = campaign_statements(self._store.database, message)
        found = self._execute(cursor, query).fetchone()
        if found is None:
            self._execute(cursor, create)
            found = self._execute(cursor, query).fetchone()
        return int(found[0])

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

    def _insert(self, table: str, row: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        """``INSERT INTO table`` for ``row``'s keys, compiled by SQLAlchemy once."""
        found = self._compiled.get(table)
        if found is None:
            target = messages if table == "messages" else recipients
            compiled = insert(target).compile(
                dialect=self._engine.dialect, column_keys=list(row)
            )
            found = (compiled.string, tuple(compiled.positiontup or ()))
            self._compiled[table] = found
        return found

    def _execute(self, cursor: Any, statement: Any) -> Any:
        """A SQLAlchemy statement, compiled now, its values bound here."""
        compiled = statement.compile(
            dialect=self._engine.dialect,
            compile_kwargs={"render_postcompile": True},
        )
        params = compiled.construct_params()
        names = tuple(compiled.positiontup or ())
        return cursor.execute(compiled.string, self._values(params, names))

    def _values(self, row: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
        return tuple(self._value(row[name]) for name in names)

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime):  # a batch's rows share a few instants
            found = self._bound.get(value)
            if found is None:
                found = self._bound[value] = self._bind(value)
            return found
        if not isinstance(value, _PLAIN):  # a type this writer does not bind
            raise TypeError(f"cannot bind {type(value).__name__} for SQLite")
        return value
