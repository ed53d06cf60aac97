"""`warmup run` on a PostgreSQL that is stopped mid-run, then started again
(issue 12, item 7): nothing lost, nothing sent twice, a few log lines rather
than a traceback a send. A server of its own, so the outage touches no other
test. Every wait is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _fresh_pg_database
from tests.e2e.helpers import enqueue_via_cli
from tests.e2e.test_daemon import Tracker, _start, _states, _stop, _write_project
from warmup.testing.postgres import PostgresServer, PostgresUnavailable, start_postgres
from warmup.testing.smtp import ScriptedSMTPServer

pytestmark = pytest.mark.external_service
COUNT = 600


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


# What the dispatcher logs when the database goes: it failed to claim, or to
# record what it sent.
OUTAGE = ("failed this tick", "retrying until the database is back")


async def _outage_logged(log: Path, within: float) -> None:
    for _ in range(int(within / 0.1)):
        if any(line in _read(log) for line in OUTAGE):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the log never told of the outage: {_read(log)[-2000:]}")


async def test_postgres_stopped_and_started_mid_run(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    tracker = Tracker()
    database = _fresh_pg_database(own_postgres.admin_url)
    addresses = [f"u{i}@gmail.com" for i in range(COUNT)]
    async with ScriptedSMTPServer(reply_for=tracker.reply) as sink:
        config = _write_project(tmp_path, database, sink.port, "node-a", ["127.0.0.2"])
        await enqueue_via_cli(tmp_path, config, addresses)
        log = tmp_path / "run.log"
        process = await _start(config, log)
        try:
            await tracker.reach(100, within=120)
            await asyncio.to_thread(own_postgres.pause)
            sent_while_down = tracker.total
            await _outage_logged(log, within=60)
            assert tracker.total - sent_while_down <= 1  # only what was in flight
            await asyncio.to_thread(own_postgres.resume)
            await tracker.reach(COUNT, within=240)
        finally:
            code = await _stop(process)
    text = _read(log)
    assert code == 0, text[-2000:]
    assert tracker.total == COUNT  # none sent twice
    assert set(tracker.accepted) == set(addresses)  # none lost
    assert _states(database) == {"delivered": COUNT}
    assert "Traceback" not in text, text[-4000:]
    assert 1 <= sum(text.count(line) for line in OUTAGE) <= 3, text[-4000:]
    assert len(text) < 20_000, text[-4000:]
