"""The engine's queries on recipients go through an index, on both backends.

Recipients is the table that grows to millions; the claim, lease, routing and
campaign indexes are partial (migration 0014), and a partial index serves only a
query that states its predicate literally. A query that lost its index here
still passes every behaviour test and then reads the whole queue at 10M rows,
so each statement the store runs for these calls is explained: on SQLite no
``SCAN recipients`` (a table scan), on PostgreSQL with sequential scans priced
out no ``Seq Scan on recipients``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from warmup.adapters.db.claims import _claim_template
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import NodeProcess, TemplateRecord
from warmup.core.lanes.lane import Lane
from warmup.core.recipients.recipient import parse_recipient_row

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
IP = "127.0.0.2"
DEAD = NodeProcess(claimer="old:1", node="old", machine="m", pid=1)
ME = NodeProcess(claimer="new:2", node="new", machine="m", pid=2)
TEMPLATE = TemplateRecord(name="t.eml", sha256="p" * 64, content=b"S: x\r\n\r\nx")


async def _filled(store: SQLStore) -> tuple[int, int]:
    """A campaign with routed and unrouted recipients, a lane, one claim by a
    process whose heartbeat then lapses: (campaign id, lane id)."""
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    rows = [parse_recipient_row({"email": f"u{i}@gmail.com"}, set()) for i in range(30)]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * 20 + [None] * 10, NOW)
    lane_id, _ = await store.ensure_lane(Lane(ip=IP, isp="gmail"), NOW)
    await store.heartbeat(DEAD, [IP], now=NOW, alive_until=NOW + timedelta(seconds=1))
    await _claim(store, lane_id, NOW, DEAD)
    return campaign.id, lane_id


async def _claim(store: SQLStore, lane_id: int, now: datetime, by: NodeProcess) -> Any:
    return await store.claim(
        lane_id=lane_id,
        isp="gmail",
        limit=5,
        now=now,
        claimer=by.claimer,
        lease_until=now + timedelta(hours=1),
    )


def _calls(store: SQLStore, lane_id: int) -> list[Callable[[], Awaitable[Any]]]:
    later = NOW + timedelta(minutes=5)
    return [
        # A live process's beat takes the lapsed one's claims back.
        lambda: store.heartbeat(ME, [IP], now=later, alive_until=later + timedelta(1)),
        lambda: _claim(store, lane_id, later, ME),
        store.claims_per_lane,
        store.campaign_rows,  # `warmup campaign list`: from the counts
        lambda: store.release_expired_leases(later),
        lambda: store.release_claims(ME.claimer, later),
        store.unrouted_domains,
        lambda: store.defer_domain("gmail.com", "no MX", later, later),
        lambda: store.fail_domain("gmail.com", "no MX", later),
        lambda: store.set_campaign_cancelled(
            "c", cancel=True, actor="t", reason="", now=later
        ),
        lambda: store.set_campaign_cancelled(
            "c", cancel=False, actor="t", reason="", now=later
        ),
    ]


async def test_the_engines_queries_on_recipients_use_an_index(store: SQLStore) -> None:
    _, lane_id = await _filled(store)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "recipients" in statement and not statement.lstrip().startswith("INSERT"):
            seen.append((statement, params))

    sync = store.engine.sync_engine
    event.listen(sync, "before_cursor_execute", capture)
    try:
        for call in _calls(store, lane_id):
            await call()
    finally:
        event.remove(sync, "before_cursor_execute", capture)
    if store.engine.dialect.name == "sqlite":
        # The claim goes to the driver as it is (sqlite_call): explained here.
        claim = _claim_template().compile(dialect=sqlite.dialect())
        seen.append((claim.string, (None,) * len(claim.positiontup or ())))
        scans = _sqlite_scans(str(store.engine.url.database), seen)
    else:
        scans = await _postgres_scans(store, seen)
    assert len(seen) >= 10, seen
    assert scans == []


def _sqlite_scans(path: str, seen: list[tuple[str, Any]]) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [
            statement
            for statement, params in seen
            if any(
                row[3] == "SCAN recipients"
                for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            )
        ]
    finally:
        db.close()


async def _postgres_scans(store: SQLStore, seen: list[tuple[str, Any]]) -> list[str]:
    scans = []
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, params in seen:
            plan = await conn.exec_driver_sql(f"EXPLAIN {statement}", params)
            if any("Seq Scan on recipients" in row[0] for row in plan):
                scans.append(statement)
    return scans


@pytest.mark.parametrize(
    ("where", "scan"),
    [
        ("last_reply = 'x'", True),  # no index: read it all
        ("state = 'queued' AND isp = 'gmail'", False),  # the claim index
        ("claimed_until < '2031-01-01'", False),  # the lease index
    ],
)
async def test_the_check_tells_a_scan_from_an_index(
    store: SQLStore, where: str, scan: bool
) -> None:
    await _filled(store)
    statement = f"SELECT id FROM recipients WHERE {where}"
    if store.engine.dialect.name == "sqlite":
        scans = _sqlite_scans(str(store.engine.url.database), [(statement, ())])
    else:
        scans = await _postgres_scans(store, [(statement, {})])
    assert bool(scans) is scan
