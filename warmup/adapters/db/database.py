"""Database: the one engine every part of the store shares, and its helpers.

Each part of :class:`~warmup.adapters.db.store.SQLStore` (claims, recording,
reporting, feedback, …) is a small class over one ``Database``: it opens its
transactions with :meth:`Database.begin`, builds dialect-specific inserts with
:meth:`Database.insert` and sends bulk rows through :meth:`Database.executemany`.
Errors are not translated here: the store's facade does it once for every method.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import partial
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Date
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from warmup.adapters.db.schema import UTCDateTime

__all__ = ["Database"]


T = TypeVar("T")


def _same(value: Any) -> Any:
    return value


def _immediate(work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """``work`` in its own write transaction (the connection is in autocommit
    mode: see connect.sqlite_pragmas)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # the pool takes it back as it was lent
            conn.execute("ROLLBACK")
        raise
    return result


class Database:
    """One SQLAlchemy async engine with the dialect-aware helpers the parts share."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock: asyncio.Lock | None = None
        self._writers: dict[bool, AsyncEngine] = {}  # SQLite: by durable
        # Driver-level SQL (text, bind names in order, positional?) per statement,
        # and the dialect's converter for instants; built on first use.
        self._driver_sql: dict[
            str, tuple[str, tuple[str, ...], bool, dict[str, Any]]
        ] = {}
        self._binder: Callable[[datetime], Any] | None = None
        self._day_bind: Callable[[date], Any] | None = None
        self._reader: Callable[[Any], datetime | None] | None = None
        # The last bulk INSERT compiled for SQLite: (statement, SQL, bind names).
        self._last_insert: tuple[Any, str, tuple[str, ...]] | None = None
        # SQLite: the connection sqlite_call keeps (SQLAlchemy's, its driver's).
        self._kept: tuple[AsyncConnection, Any] | None = None

    async def close(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept[0].close()
        await self.engine.dispose()

    def connect(self) -> AsyncConnection:
        """A read connection (``async with db.connect() as conn``)."""
        return self.engine.connect()

    @asynccontextmanager
    async def begin(self, *, durable: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction. On SQLite, writers of this process queue on an
        asyncio lock: otherwise they meet in SQLite's busy handler, which sleeps
        in steps of milliseconds long after the lock was freed. ``durable``: on
        SQLite the commit fsyncs (PRAGMA synchronous=FULL; PostgreSQL always does)."""
        if self.dialect != "sqlite":
            async with self.engine.begin() as conn:
                yield conn
            return
        writer = self._writers.get(durable)
        if writer is None:  # built once: an option engine per call was not free
            writer = self._writers[durable] = self.engine.execution_options(
                sqlite_immediate=True, sqlite_durable=durable
            )
        async with self.writer_lock(), writer.begin() as conn:
            yield conn

    def writer_lock(self) -> asyncio.Lock:
        """The lock this process's SQLite writers queue on (see :meth:`begin`)."""
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    async def sqlite_call(
        self, work: Callable[[sqlite3.Connection], T], *, write: bool = False
    ) -> T:
        """SQLite only: ``work`` on a pooled sqlite3 connection, in aiosqlite's
        thread, in one trip there and back (through SQLAlchemy a statement is
        three or four, its transaction's BEGIN as many again). ``write``: under
        this process's writer lock, between BEGIN IMMEDIATE and COMMIT (ROLLBACK
        if ``work`` raises). For the engine's frequent, simple statements."""
        if not write:
            return await self._on_driver_thread(work)
        async with self.writer_lock():
            return await self._on_driver_thread(partial(_immediate, work))

    async def _on_driver_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        driver = await self._kept_driver()
        # aiosqlite's queue to its thread (private, stable since 0.17).
        result: T = await driver._execute(lambda: work(driver._conn))
        return result

    @property
    def kept_connections(self) -> int:
        """Pooled connections held for good (sqlite_call's), not lent and lost."""
        return 0 if self._kept is None else 1

    async def _kept_driver(self) -> Any:
        """The aiosqlite connection :meth:`sqlite_call` keeps for itself: a pool
        checkout, its return and the rollback the pool does on return cost
        ~110 µs of the loop's time a call, a few calls every tick (issue 16).
        Every call's work ends its own transaction, so it is lent to nobody."""
        kept = self._kept
        if kept is None:
            conn = await self.engine.connect()  # no statement: no BEGIN
            try:
                raw = await conn.get_raw_connection()
            except BaseException:  # cancelled, say: not kept, so not left out
                await conn.close()
                raise
            kept = self._kept
            if kept is None:
                kept = self._kept = (conn, raw.driver_connection)
            else:  # another call got there first while this one waited
                await conn.close()
        return kept[1]

    def instant_reader(self) -> Callable[[Any], datetime | None]:
        """An instant as this dialect's driver returns it, made aware UTC
        (UTCDateTime's result path)."""
        if self._reader is None:
            dialect = self.engine.dialect
            impl = UTCDateTime().dialect_impl(dialect)
            process = impl.result_processor(dialect, None)
            self._reader = process if process is not None else _same
            if self.dialect == "sqlite":  # ISO text: parsed in C, ~10x faster
                self._reader = partial(_sqlite_instant, self._reader)
        return self._reader

    def insert(self, table: Any) -> Any:
        """This dialect's INSERT (it has ``on_conflict_do_nothing/update``)."""
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)

    def instant_binder(self) -> Callable[[datetime], Any]:
        """An aware instant as this dialect stores it (UTCDateTime's bind path)."""
        if self._binder is None:
            dialect = self.engine.dialect
            process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
            self._binder = process if process is not None else _same
            if self.dialect == "sqlite":  # the same text in one C call, ~2x faster
                self._binder = sqlite_instant_text
        return self._binder

    def day_binder(self) -> Callable[[date], Any]:
        """A date as this dialect's driver takes it (Date's bind path)."""
        if self._day_bind is None:
            dialect = self.engine.dialect
            process = Date().dialect_impl(dialect).bind_processor(dialect)
            self._day_bind = process if process is not None else _same
        return self._day_bind

    async def executemany(
        self,
        conn: AsyncConnection,
        name: str,
        build: Callable[[], Any],
        rows: list[dict[str, Any]],
    ) -> None:
        """Run a statement once per row through the driver's executemany.

        ``rows`` hold driver-ready values keyed by the statement's bind names;
        keys the statement does not use are ignored. The SQL is compiled once
        per ``name``.
        """
        await self.executemany_all(conn, [self.bound(name, build, rows)])

    def bound(
        self, name: str, build: Callable[[], Any], rows: list[dict[str, Any]]
    ) -> tuple[str, list[Any]]:
        """The driver's SQL for statement ``name`` (compiled once) and ``rows``
        as its parameters (see :meth:`executemany`)."""
        compiled = self._driver_sql.get(name)
        if compiled is None:
            statement = build().compile(dialect=self.engine.dialect)
            positional = self.engine.dialect.positional
            names = statement.positiontup if positional else statement.binds
            # The statement's own constants (a state, an OFFSET 0), plain values.
            fixed = {k: v for k, v in statement.params.items() if v is not None}
            compiled = (statement.string, tuple(names or ()), positional, fixed)
            self._driver_sql[name] = compiled
        sql, names, positional, fixed = compiled
        if fixed:
            rows = [fixed | row for row in rows]
        if not positional:
            return sql, [{key: row[key] for key in names} for row in rows]
        if len(names) < 2:  # itemgetter of one key gives the value, not a tuple
            return sql, [tuple(row[key] for key in names) for row in rows]
        take = itemgetter(*names)  # the row's values in order, in C (per send)
        return sql, [take(row) for row in rows]

    async def executemany_all(
        self, conn: AsyncConnection, statements: list[tuple[str, list[Any]]]
    ) -> None:
        """Run :meth:`bound` statements in order, in ``conn``'s transaction.

        On SQLite all of them go to aiosqlite's thread at once, as one call on
        the sqlite3 connection: through SQLAlchemy each statement is three or
        four hops to that thread and back (a cursor, the statement, its close),
        which were most of a tick's record."""
        if self.dialect != "sqlite":
            for sql, params in statements:
                await conn.exec_driver_sql(sql, params)
            return
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # aiosqlite.Connection

        def run() -> None:
            sqlite3_connection = driver._conn  # on aiosqlite's own thread
            for sql, params in statements:
                sqlite3_connection.executemany(sql, params)

        # aiosqlite's queue to its thread (private, stable since 0.17): the one
        # way to run several statements in one trip.
        await driver._execute(run)

    async def insert_counted(self, statement: Any, rows: list[dict[str, Any]]) -> int:
        """executemany an INSERT ... ON CONFLICT DO NOTHING; rows actually inserted.

        On PostgreSQL the batch goes straight to psycopg's pipelined executemany,
        whose rowcount is the sum over the batch: ~3x faster than RETURNING
        through SQLAlchemy's insertmanyvalues. The values are plain (aware
        datetimes included), so skipping SQLAlchemy's bind processing is safe.
        """
        async with self.begin() as conn:
            if self.dialect == "sqlite":
                return await self.sqlite_insert_counted(conn, statement, rows)
            if self.dialect != "postgresql":
                result = await conn.execute(statement, rows)
                return int(result.rowcount)
            sql = str(
                statement.compile(
                    dialect=self.engine.dialect, column_keys=list(rows[0])
                )
            )
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            async with driver.cursor() as cursor:
                await cursor.executemany(sql, rows)
                return int(cursor.rowcount)

    async def sqlite_insert_counted(
        self, conn: AsyncConnection, statement: Any, rows: list[dict[str, Any]]
    ) -> int:
        """The same on SQLite, in the caller's transaction: the driver's
        executemany (its rowcount counts only rows inserted), instants converted
        once as UTCDateTime would bind them; SQLAlchemy's per-value bind
        processing was most of `warmup enqueue`'s and the demo's list load."""
        last = self._last_insert  # a batch split by key compiles once
        if last is None or last[0] is not statement:
            compiled = statement.compile(
                dialect=self.engine.dialect, column_keys=list(rows[0])
            )
            last = (statement, compiled.string, tuple(compiled.positiontup or ()))
            self._last_insert = last
        _, sql, names = last
        binder = self.instant_binder()
        bound: dict[datetime, Any] = {}  # most instants repeat (now, a date)

        def to_db(value: datetime) -> Any:
            found = bound.get(value)
            if found is None:
                found = bound[value] = binder(value)
            return found

        params = [
            tuple(
                to_db(value) if isinstance(value, datetime) else value
                for value in (row[name] for name in names)
            )
            for row in rows
        ]
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        cursor = await driver.executemany(sql, params)
        try:
            return int(cursor.rowcount)
        finally:
            await cursor.close()


def sqlite_instant_text(value: datetime) -> str:
    """An aware instant as SQLAlchemy stores it on SQLite (UTCDateTime's bind,
    then SQLite's DATETIME format): UTC, naive, always with its microseconds,
    "2026-12-03 19:02:40.000000". Several per send in a tick's record."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime given to the store: {value!r}")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_instant(
    slow: Callable[[Any], datetime | None], value: Any
) -> datetime | None:
    """An instant SQLAlchemy stored on SQLite ("2026-12-03 19:02:40.994653",
    UTC), read by ``datetime.fromisoformat``; anything else by ``slow``."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return slow(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    return slow(value)
