"""Shared fixtures: a database URL per backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from warmup.adapters.db.store import SQLStore
from warmup.testing.postgres import PostgresServer, PostgresUnavailable, start_postgres

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count()


E2E = REPO / "tests" / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests (real processes, the CLI, demo runs) are all ``slow``:
    ``./dev test -m "not slow"`` is the quick loop, CI runs everything."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """Admin URL of a PostgreSQL server: WARMUP_TEST_PG_URL, or one we start."""
    given = os.environ.get("WARMUP_TEST_PG_URL")
    if given:
        yield given
        return
    server: PostgresServer | None = None
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("WARMUP_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL required (WARMUP_REQUIRE_PG) but: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server.admin_url
    finally:
        server.stop()


def _fresh_pg_database(admin_url: str) -> str:
    name = f"warmup_test_{os.getpid()}_{next(_counter)}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param(
            "postgres", marks=[pytest.mark.external_service, pytest.mark.slow]
        ),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warmup.db'}"
    admin: str = request.getfixturevalue("pg_admin")
    return _fresh_pg_database(admin)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SQLStore]:
    opened = await SQLStore.open(database_url)
    try:
        yield opened
    finally:
        checked_out = getattr(opened.engine.pool, "checkedout", lambda: 0)()
        # sqlite_call keeps one for itself; any other is a leak.
        checked_out -= opened.database.kept_connections
        assert checked_out == 0, "connections left checked out"
        await opened.close()
