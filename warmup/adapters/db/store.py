"""SQLStore: the Store port on SQLAlchemy 2.x async (SQLite WAL or PostgreSQL).

Migrations are applied automatically when the store is opened.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, delete, event, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from warmup.adapters.db.controls import ControlOps
from warmup.adapters.db.dmarc import DMARCOps
from warmup.adapters.db.dns_evidence import DNSEvidenceOps
from warmup.adapters.db.events import EventOps
from warmup.adapters.db.failure import describe
from warmup.adapters.db.ownership import OwnershipOps
from warmup.adapters.db.queue import suppression_row
from warmup.adapters.db.reputation import ReputationOps
from warmup.adapters.db.retention import RetentionOps
from warmup.adapters.db.schema import campaigns, recipients, suppressions, templates
from warmup.adapters.db.trace import TraceOps
from warmup.adapters.private_file import create_private
from warmup.app.ports import CampaignRef, TemplateRecord
from warmup.core.errors import InputError, StoreError
from warmup.core.model import RecipientState, SuppressionKind
from warmup.core.recipient import NewRecipient
from warmup.core.routing import engagement_priority
from warmup.core.suppression import Suppression

__all__ = ["SQLStore", "async_url"]

logger = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 7_403_172_211  # pg_advisory_xact_lock key: one migrator at a time
_CHUNK = 5000  # rows per IN (...) lookup


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so _sqlite_begin decides how to BEGIN.
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


def _sqlite_begin(connection: Connection) -> None:
    # Write transactions (opened through QueueOps._begin) say BEGIN IMMEDIATE:
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


class SQLStore(
    DMARCOps,
    OwnershipOps,
    ControlOps,
    EventOps,
    RetentionOps,
    TraceOps,
    DNSEvidenceOps,
    ReputationOps,
):
    """The Store port over one SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    async def open(cls, url: str) -> SQLStore:
        """Connect, apply pending migrations, and return the store."""
        _check_sqlite_directory(url)
        # A pre-ping is a round trip before every checkout: worth it for a server
        # that may drop idle connections, not for a SQLite file (each round trip
        # there is a hop to aiosqlite's thread; the demo's ticks are made of them).
        driver_url = async_url(url)
        engine = create_async_engine(
            driver_url, pool_pre_ping=not driver_url.startswith("sqlite")
        )
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        try:
            immediate = engine.execution_options(
                sqlite_immediate=True, sqlite_migrating=True
            )
            async with immediate.begin() as conn:
                await conn.run_sync(_upgrade)
            await engine.dispose()  # no pooled connection keeps foreign keys off
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreError("open", describe(exc)) from exc
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    def _insert(self, table: Any) -> Any:
        module = postgresql if self._dialect == "postgresql" else sqlite
        return module.insert(table)

    # -- campaigns ---------------------------------------------------------------

    async def ensure_campaign(
        self, name: str, template: TemplateRecord, now: datetime
    ) -> CampaignRef:
        try:
            async with self._begin() as conn:
                await conn.execute(
                    self._insert(templates)
                    .values(
                        name=template.name,
                        sha256=template.sha256,
                        content=template.content,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["sha256"])
                )
                template_id = (
                    await conn.execute(
                        select(templates.c.id).where(
                            templates.c.sha256 == template.sha256
                        )
                    )
                ).scalar_one()
                existing = (
                    await conn.execute(
                        select(campaigns.c.id, campaigns.c.template_id).where(
                            campaigns.c.name == name
                        )
                    )
                ).first()
                if existing is not None:
                    if existing.template_id != template_id:
                        raise InputError(
                            template.name,
                            (
                                f"campaign {name!r} already exists with a different "
                                "template; use a new campaign name"
                            ),
                        )
                    return CampaignRef(id=existing.id, name=name, created=False)
                campaign_id = (
                    await conn.execute(
                        insert(campaigns)
                        .values(name=name, template_id=template_id, created_at=now)
                        .returning(campaigns.c.id)
                    )
                ).scalar_one()
        except SQLAlchemyError as exc:
            raise StoreError("creating the campaign", describe(exc)) from exc
        return CampaignRef(id=campaign_id, name=name, created=True)

    # -- recipients ----------------------------------------------------------------

    async def insert_recipients(
        self,
        campaign_id: int,
        recipients_: Sequence[NewRecipient],
        isps: Sequence[str | None],
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> int:
        if not recipients_:
            return 0
        _require_aware(now)
        if deadline is not None:
            _require_aware(deadline)
        rows = [
            {
                "campaign_id": campaign_id,
                "address": r.address,
                "domain": r.domain,
                "isp": isp,
                "engagement_score": r.engagement_score,
                "engaged_at": r.engaged_at,
                "priority": engagement_priority(
                    r.engagement_score,
                    r.engaged_at.timestamp() if r.engaged_at else None,
                ),
                "fields": json.dumps(
                    r.fields, ensure_ascii=False, separators=(",", ":")
                ),
                "state": RecipientState.queued.value,
                "attempts": 0,
                "next_attempt_at": now,
                "queued_at": now,
                "updated_at": now,
                "deadline_at": deadline,
            }
            for r, isp in zip(recipients_, isps, strict=True)
        ]
        statement = self._insert(recipients).on_conflict_do_nothing(
            index_elements=["campaign_id", "address"],
            index_where=recipients.c.message_id.is_(None),
        )
        try:
            return await self._insert_counted(statement, rows)
        except SQLAlchemyError as exc:
            raise StoreError("queueing recipients", describe(exc)) from exc

    async def _insert_counted(self, statement: Any, rows: list[dict[str, Any]]) -> int:
        """executemany an INSERT ... ON CONFLICT DO NOTHING; rows actually inserted.

        On PostgreSQL the batch goes straight to psycopg's pipelined executemany,
        whose rowcount is the sum over the batch: ~3x faster than RETURNING
        through SQLAlchemy's insertmanyvalues. The values are plain (aware
        datetimes included), so skipping SQLAlchemy's bind processing is safe.
        """
        async with self._begin() as conn:
            if self._dialect == "sqlite":
                return await self._sqlite_insert_counted(conn, statement, rows)
            if self._dialect != "postgresql":
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

    async def _sqlite_insert_counted(
        self, conn: AsyncConnection, statement: Any, rows: list[dict[str, Any]]
    ) -> int:
        """The same on SQLite: the driver's executemany (its rowcount counts only
        rows inserted), instants converted once as UTCDateTime would bind them;
        SQLAlchemy's per-value bind processing was most of `warmup enqueue`'s
        and the demo's list load."""
        compiled = statement.compile(
            dialect=self.engine.dialect, column_keys=list(rows[0])
        )
        names = tuple(compiled.positiontup or ())
        binder = self._instant_binder()
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
        cursor = await driver.executemany(compiled.string, params)
        try:
            return int(cursor.rowcount)
        finally:
            await cursor.close()

    async def count_recipients(self, campaign_id: int | None = None) -> dict[str, int]:
        """Recipients per state (of one campaign, or all)."""
        query = select(recipients.c.state, func.count()).group_by(recipients.c.state)
        if campaign_id is not None:
            query = query.where(recipients.c.campaign_id == campaign_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            return {str(state): int(count) for state, count in rows}

    # -- suppressions --------------------------------------------------------------

    async def suppressed_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        try:
            async with self.engine.connect() as conn:
                for start in range(0, len(keys), _CHUNK):
                    chunk = list(keys[start : start + _CHUNK])
                    result = await conn.execute(
                        select(suppressions.c.address).where(
                            suppressions.c.address.in_(chunk)
                        )
                    )
                    found.update(result.scalars())
        except SQLAlchemyError as exc:
            raise StoreError("checking suppressions", describe(exc)) from exc
        return found

    async def add_suppressions(self, entries: Sequence[Suppression]) -> int:
        if not entries:
            return 0
        for entry in entries:
            _require_aware(entry.created_at)
        rows = [suppression_row(e) for e in entries]
        statement = self._insert(suppressions).on_conflict_do_nothing(
            index_elements=["address"]
        )
        try:
            return await self._insert_counted(statement, rows)
        except SQLAlchemyError as exc:
            raise StoreError("adding suppressions", describe(exc)) from exc

    async def remove_suppressions(self, addresses: Sequence[str]) -> int:
        removed = 0
        try:
            async with self._begin() as conn:
                for start in range(0, len(addresses), _CHUNK):
                    chunk = list(addresses[start : start + _CHUNK])
                    result = await conn.execute(
                        delete(suppressions).where(suppressions.c.address.in_(chunk))
                    )
                    removed += result.rowcount
        except SQLAlchemyError as exc:
            raise StoreError("removing suppressions", describe(exc)) from exc
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
        async with self.engine.connect() as conn:
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
        async with self.engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(suppressions))
            return int(count.scalar_one())


def _require_aware(moment: datetime) -> None:
    # The PostgreSQL bulk path bypasses UTCDateTime, so check here as it would.
    if moment.tzinfo is None:
        raise StoreError("writing", f"naive datetime given to the store: {moment!r}")
