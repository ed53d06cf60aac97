"""Opening the database: the driver URL, SQLite's pragmas and transaction
mode, a private new file, and the migrations applied at open."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from warmup.adapters.db.failure import DATABASE_ERRORS, describe
from warmup.adapters.private_file import create_private
from warmup.core.errors import StoreError

__all__ = ["MIGRATIONS", "async_url", "open_engine", "sqlite_begin", "sqlite_pragmas"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 7_403_172_211  # pg_advisory_xact_lock key: one migrator at a time


def async_url(url: str) -> str:
    """Map the user's URL to the async driver (sqlite -> aiosqlite, pg -> psycopg)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError("open", f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    else:
        raise StoreError("open", f"unsupported database {backend!r} in {url!r}")
    return parsed.render_as_string(hide_password=False)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so sqlite_begin decides how to BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch the file to WAL (a property of the file, kept once set).

    Switching needs the exclusive lock, and SQLite answers "database is locked" at
    once, without its busy handler, while another connection holds a write
    transaction (two processes opening a new file together): so look first, and
    retry the switch a bounded number of times. Runs on the driver's thread.
    """
    for attempt in range(20):
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, adapted
            if "locked" not in str(exc).lower() or attempt == 19:
                raise
            time.sleep(0.02 * (attempt + 1))


def sqlite_begin(connection: Connection) -> None:
    # Write transactions (opened through Database.begin) say BEGIN IMMEDIATE:
    # they take the write lock up front, so two writers queue on busy_timeout
    # instead of failing with "database is locked" when a deferred transaction
    # tries to upgrade its read lock. Reads stay deferred: WAL never blocks them.
    options = connection.get_execution_options()
    immediate = options.get("sqlite_immediate", False)
    if options.get("sqlite_migrating"):
        # Batch migrations copy tables that others reference; with foreign keys
        # on, SQLite refuses to drop the old copy. Only settable outside a
        # transaction; open() discards this connection afterwards.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    info = connection.connection.info
    if options.get("sqlite_durable") and not info.get("synchronous_full"):
        # Durable writers (the relay's 250): fsync the WAL at every commit, so
        # an accepted message survives power loss too. The connection keeps it.
        connection.exec_driver_sql("PRAGMA synchronous=FULL")
        info["synchronous_full"] = True
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _check_sqlite_directory(url: str) -> None:
    """Say plainly when a SQLite file's directory is missing (before aiosqlite
    starts a connection thread only to fail); create a new file private."""
    parsed = make_url(async_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database).expanduser().resolve()
    if not path.parent.is_dir():
        raise StoreError(
            "open", f"directory {str(path.parent)!r} does not exist ({url})"
        )
    # SQLite would create it under the umask (0644): it holds recipient
    # addresses, so create it 0600 (its -wal and -shm files take its mode).
    try:
        create_private(path)
    except OSError as exc:
        raise StoreError(
            "open", f"cannot create {str(path)!r}: {exc.strerror}"
        ) from None


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise StoreError("open", f"migration broke a foreign key: {tuple(broken)}")


async def open_engine(url: str) -> AsyncEngine:
    """Connect, apply pending migrations, and return the engine."""
    _check_sqlite_directory(url)
    # A pre-ping is a round trip before every checkout: worth it for a server
    # that may drop idle connections, not for a SQLite file (each round trip
    # there is a hop to aiosqlite's thread; the demo's ticks are made of them).
    # On SQLite no reset either: SQLAlchemy ends every transaction itself (the
    # commit, or the rollback of a read's or a failed write's), so the pool's
    # rollback on check-in found nothing to undo after each write transaction,
    # one more hop to aiosqlite's thread each time.
    driver_url = async_url(url)
    sqlite = driver_url.startswith("sqlite")
    engine = create_async_engine(
        driver_url,
        pool_pre_ping=not sqlite,
        pool_reset_on_return=None if sqlite else "rollback",
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", sqlite_begin)
    try:
        immediate = engine.execution_options(
            sqlite_immediate=True, sqlite_migrating=True
        )
        async with immediate.begin() as conn:
            await conn.run_sync(_upgrade)
        await engine.dispose()  # no pooled connection keeps foreign keys off
    except DATABASE_ERRORS as exc:
        await engine.dispose()
        raise StoreError("open", describe(exc)) from exc
    return engine
