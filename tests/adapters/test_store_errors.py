"""Every public store method turns database errors into StoreError, in one place.

Walked by introspection (the facade marks each method it translates), then
tried for real: a SQLite file that was removed or is not a database, and a
PostgreSQL server that stopped; the CLI then prints one line and exits 1.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from warmup.adapters.db.failure import MARK, delegate, delegate_stream
from warmup.adapters.db.store import SQLStore
from warmup.app import dmarc, ingest, ports, report, reputation, shipping, unsubscribe
from warmup.cli import cli
from warmup.config.files import BUILTIN_SCHEDULES
from warmup.core.attempt import TickRecord
from warmup.core.errors import StoreError
from warmup.core.lanes.lane import Lane
from warmup.core.recipients.suppression import make_suppression
from warmup.core.settings import RetentionSettings
from warmup.testing.postgres import PostgresServer, PostgresUnavailable, start_postgres

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)
# The ports SQLStore serves: every method they name must be on the store, translated.
PORTS: tuple[type[Any], ...] = (
    ports.Store,
    ports.OwnershipStore,
    ports.EngineStore,
    dmarc.DMARCStore,
    dmarc.AuthSource,
    ingest.LateReportStore,
    report.ReportSource,
    reputation.ReputationStore,
    shipping.EventStore,
    unsubscribe.UnsubscribeStore,
)


def _public(cls: type[Any]) -> list[str]:
    return sorted(name for name in dir(cls) if not name.startswith("_"))


def _store_methods() -> dict[str, Any]:
    found = {}
    for name in _public(SQLStore):
        attr = inspect.getattr_static(SQLStore, name)
        found[name] = attr.__func__ if isinstance(attr, classmethod) else attr
    return found


def test_every_public_store_method_is_translated() -> None:
    methods = _store_methods()
    assert len(methods) > 60  # the walk sees the facade, not an empty class
    missing = [name for name, attr in methods.items() if not hasattr(attr, MARK)]
    assert missing == []
    for name, attr in methods.items():
        assert getattr(attr, MARK), name  # says what failed


def test_every_port_method_is_on_the_store() -> None:
    methods = _store_methods()
    for port in PORTS:
        for name in _public(port):
            assert name in methods, f"{port.__name__}.{name} is not on SQLStore"


async def test_every_part_method_is_reachable_and_delegates_to_its_part(
    tmp_path: Path,
) -> None:
    store = await SQLStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        delegated = {
            name: attr
            for name, attr in _store_methods().items()
            if isinstance(attr, delegate | delegate_stream)
        }
        for name, attr in delegated.items():
            part = getattr(store, attr.part)
            owner = attr.method.__qualname__.split(".")[0]
            assert type(part).__name__ == owner, name
            assert attr.method.__name__ == name
            # The bound method still carries the mark (what a caller gets).
            assert getattr(getattr(store, name), MARK) == getattr(attr, MARK)
        parts = {
            value
            for value in vars(store).values()
            if type(value).__module__.startswith("warmup.adapters.db.")
            and type(value).__name__.startswith("SQL")
        }
        assert len(parts) >= 15
        for part in parts:
            for name in _public(type(part)):
                if name == "db" or not callable(getattr(part, name)):
                    continue
                assert name in delegated, f"{type(part).__name__}.{name} unreachable"
    finally:
        await store.close()


# -- behaviour: a database that went away -------------------------------------


def _calls(store: SQLStore) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call per kind of store work: reads, writes, bulk driver paths."""
    lane = Lane(ip="127.0.0.2", isp="gmail")
    entry = make_suppression("x@y.example", reason="manual", source="cli", now=NOON)

    async def drain() -> None:
        async for _ in store.iter_suppressions():
            pass  # pragma: no cover - the stream fails first

    return {
        "checking suppressions": lambda: store.suppressed_keys(["a@b.example"]),
        "adding suppressions": lambda: store.add_suppressions([entry]),
        "listing suppressions": drain,
        "counting the queue": store.queued_isps,
        "loading a lane": lambda: store.ensure_lane(lane, NOON),
        "loading lanes": lambda: store.ensure_lanes([lane], NOON),
        "reading lanes' recent outcomes": lambda: store.lane_windows([1], NOON),
        "claiming recipients": lambda: store.claim(
            lane_id=1,
            isp="gmail",
            limit=5,
            now=NOON,
            claimer="n",
            lease_until=NOON + timedelta(minutes=1),
        ),
        "returning claims to the queue": lambda: store.release_expired_leases(NOON),
        "recording attempts": lambda: store.record(
            TickRecord(dropped=[1], claimer="n"), NOON
        ),
        "reading the lanes": store.all_lanes,
        "reading the lane history": store.lane_history,
        "counting recipients": store.campaign_summary,
        "tracing an address": lambda: store.trace("a@b.example"),
        "pruning": lambda: store.prune(RetentionSettings(), NOON),
        "reading events": lambda: store.read_events(after=0, limit=10),
        "reading the IP owners": store.ip_owners,
    }


async def _assert_each_fails_cleanly(store: SQLStore) -> None:
    for operation, call in _calls(store).items():
        with pytest.raises(StoreError) as caught:
            await call()
        message = str(caught.value)
        assert "\n" not in message
        assert operation in message, (operation, message)
    await _stopped_sqlite_threads()


async def _stopped_sqlite_threads() -> None:
    """A failed aiosqlite connect stops its worker thread without waiting for
    it; let those threads finish while this loop still runs, or they report to
    a closed loop (an unhandled thread exception in the next test)."""
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5.0)


@pytest.fixture
async def filled_sqlite(tmp_path: Path) -> AsyncIterator[tuple[SQLStore, Path]]:
    directory = tmp_path / "db"
    directory.mkdir()
    store = await SQLStore.open(f"sqlite:///{directory / 'w.db'}")
    await store.add_suppressions(
        [make_suppression("a@b.example", reason="manual", source="cli", now=NOON)]
    )
    await store.engine.dispose()  # no pooled connection keeps the old file open
    try:
        yield store, directory
    finally:
        await store.close()


async def test_a_removed_sqlite_database_is_a_store_error(
    filled_sqlite: tuple[SQLStore, Path],
) -> None:
    store, directory = filled_sqlite
    shutil.rmtree(directory)
    await _assert_each_fails_cleanly(store)


async def test_a_sqlite_file_that_is_no_database_is_a_store_error(
    filled_sqlite: tuple[SQLStore, Path],
) -> None:
    store, directory = filled_sqlite
    for path in directory.iterdir():
        path.unlink()
    (directory / "w.db").write_bytes(b"not a database, " * 512)
    await _assert_each_fails_cleanly(store)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of our own, to stop (the shared one serves other tests)."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("WARMUP_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required (WARMUP_REQUIRE_PG) but: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _new_database(server: PostgresServer, name: str) -> str:
    plain = server.admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


@pytest.mark.external_service
@pytest.mark.slow
async def test_a_stopped_postgresql_is_a_store_error(
    own_postgres: PostgresServer,
) -> None:
    store = await SQLStore.open(_new_database(own_postgres, "stopped_store"))
    try:
        await store.count_suppressions()
        own_postgres.pause()
        try:
            await _assert_each_fails_cleanly(store)
        finally:
            own_postgres.resume()
        assert await store.count_suppressions() == 0  # and it comes back
    finally:
        await store.close()


# -- the CLI: one line, exit 1 --------------------------------------------------

COMMANDS = (
    ["status"],
    ["status", "--json"],
    ["events"],
    ["suppress", "list"],
    ["campaign", "list"],
    ["trace", "a@b.example"],
)


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {url}\nschedules: {BUILTIN_SCHEDULES}\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"
    )
    return config


def _assert_one_line_exit_1(config: Path) -> None:
    runner = CliRunner()
    for command in COMMANDS:
        result = runner.invoke(cli, ["-c", str(config), *command])
        assert result.exit_code == 1, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, (command, result.output)
        assert "Traceback" not in result.output
        assert "database" in lines[0].lower() or "store" in lines[0].lower(), lines


def test_the_cli_says_one_line_when_the_sqlite_file_is_no_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "w.db"
    database.write_bytes(b"not a database, " * 512)
    _assert_one_line_exit_1(_config(tmp_path, f"sqlite:///{database}"))


@pytest.mark.external_service
@pytest.mark.slow
def test_the_cli_says_one_line_when_postgresql_is_stopped(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = _new_database(own_postgres, "stopped_cli")
    own_postgres.pause()
    try:
        _assert_one_line_exit_1(_config(tmp_path, url))
    finally:
        own_postgres.resume()
