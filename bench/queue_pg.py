"""Growth curve for the queue on PostgreSQL: 100k -> 1M -> 10M recipients.

A throw-away PostgreSQL (warmup.testing.postgres), the schema from the
project's migrations (SQLStore.open), recipients loaded server-side in chunks
of 1M (INSERT ... SELECT generate_series: no Python per row), 90 % queued over
8 ISPs, the rest delivered/bounced, and a suppression list of 1 % of the
queue's size (half of it on queued addresses). The sizes grow in one database,
so each is measured on the same data plus more. Per size, after ANALYZE:

- claim: ``store.claim`` of a batch for one lane (median/p95 over --claims),
  each batch returned to the queue (not timed) so the size stays;
- filter: ``store.suppressed_keys`` for a claimed batch's lookup keys;
- status: the read queries of ``warmup status`` in this process, and the
  command itself as a child process (``warmup status --json``);
- maintenance: the dispatcher's ``queued_isps``, metrics' ``queue_totals``;
- report: ``gather_report`` (its queries read lanes and events only);
- size: pg_total_relation_size(recipients) per recipient.

Every statement the status/report/maintenance reads send is captured and
EXPLAINed: a plan with a sequential scan of recipients is printed as such.
Prints figures, asserts nothing.

    .venv/bin/python -m bench.queue_pg [--sizes 100000 1000000 10000000]
                                       [--claims 40] [--batch 50]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench.common import WARMUP, run_measured, write_config
from warmup.adapters.db.metrics_queries import queue_totals
from warmup.adapters.db.reporting import campaign_summary, held_messages, last_events
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import TemplateRecord
from warmup.app.report import gather_report
from warmup.core.lanes.lane import new_lane
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.suppression import lookup_keys
from warmup.testing.postgres import PostgresServer, start_postgres

ISPS = 8
CHUNK = 1_000_000
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
SCHEDULE = Schedule(
    isp="isp0",
    domains=("isp0.test",),
    steps=(RampStep(first_day=1, last_day=30, per_hour=1000),),
)
TEMPLATE = b"From: shop@example.test\r\nSubject: Hi {{ name }}\r\n\r\nHello\r\n"

# Server-side rows: g is the row number. 90 % queued, spread over 8 ISPs, with
# a priority that is not the insertion order (claims walk the priority index).
_LOAD = """
INSERT INTO recipients (campaign_id, address, domain, isp, priority, fields,
    state, attempts, next_attempt_at, queued_at, updated_at)
SELECT :campaign, 'user' || g || '@isp' || (g % 8) || '.test',
    'isp' || (g % 8) || '.test', 'isp' || (g % 8), ((g * 7919) % 1000) / 1000.0,
    '{"name": "N' || g || '"}',
    CASE WHEN g % 10 = 0 THEN 'delivered' WHEN g % 100 = 1 THEN 'bounced'
         ELSE 'queued' END,
    CASE WHEN g % 20 = 3 THEN 1 ELSE 0 END, :queued_at, :queued_at, :queued_at
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1) AS g
"""
# One suppression per 100 recipients: every other one a queued address.
_SUPPRESS = """
INSERT INTO suppressions (address, kind, reason, source, created_at)
SELECT CASE WHEN g % 200 = 0 THEN 'user' || (g + 2) || '@isp' || ((g + 2) % 8)
            || '.test' ELSE 'gone' || g || '@old.example' END,
       'hard', 'bench', 'bench', :at
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1, 100) AS g
"""


_DELIVERED = (
    "UPDATE recipients SET state = 'delivered', claimed_by = NULL "
    "WHERE id = %(rid)s AND state = 'sending'"
)
_REQUEUE = "UPDATE recipients SET state = 'queued', lane_id = NULL WHERE id = %(rid)s"
_RECOUNT = (
    "INSERT INTO recipient_counts (campaign_id, isp, state, slot, n) "
    "SELECT campaign_id, coalesce(isp, ''), state, 0, count(*) FROM recipients "
    "GROUP BY 1, 2, 3"
)


# How a plan reads recipients: a sequential scan or which index.
_ACCESS = re.compile(
    r"((?:Parallel )?Seq Scan on recipients|Scan using \w+ on recipients)"
)


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


class Captured:
    """Statements sent on the store's engine while ``on`` (for EXPLAIN)."""

    def __init__(self, store: SQLStore) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(store.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(
        self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any
    ) -> None:
        reads = statement.startswith(("SELECT", "UPDATE"))
        if self.on and "recipients" in statement and reads:
            self.statements.append((statement, params))


async def _setup(url: str) -> tuple[SQLStore, int, int]:
    store = await SQLStore.open(url)
    record = TemplateRecord(name="q.eml", sha256="q" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("queue", record, NOW)
    lane_id, _ = await store.ensure_lane(
        new_lane("127.0.0.2", "isp0", schedule=SCHEDULE), NOW
    )
    return store, campaign.id, lane_id


async def _grow(store: SQLStore, campaign: int, start: int, size: int) -> float:
    began = time.perf_counter()
    for lo in range(start, size, CHUNK):
        hi = min(size, lo + CHUNK)
        values = {"campaign": campaign, "lo": lo, "hi": hi, "queued_at": NOW}
        async with store.engine.begin() as conn:
            await conn.execute(text(_LOAD), values)
            await conn.execute(text(_SUPPRESS), {"lo": lo, "hi": hi, "at": NOW})
        rate = (hi - start) / (time.perf_counter() - began)
        print(f"  loaded {hi:>11,} recipients ({rate:,.0f} rows/s)", flush=True)
    async with store.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE recipients"))
        await autocommit.execute(text("VACUUM ANALYZE suppressions"))
    return time.perf_counter() - began


async def _claims(
    store: SQLStore, lane_id: int, count: int, batch: int
) -> tuple[list[float], list[float]]:
    claim_s: list[float] = []
    filter_s: list[float] = []
    for n in range(count):
        start = time.perf_counter()
        claimed = await store.claim(
            lane_id=lane_id,
            isp="isp0",
            limit=batch,
            now=NOW,
            claimer="bench:1",
            lease_until=NOW + timedelta(minutes=5),
        )
        claim_s.append(time.perf_counter() - start)
        assert len(claimed) == batch, (n, len(claimed))
        keys = sorted(lookup_keys(c.address for c in claimed))
        filter_s.append(await _timed(partial(store.suppressed_keys, keys)))
        await store.release_claims("bench:1", NOW)
    return claim_s, filter_s


async def _trigger_cost(
    store: SQLStore, lane_id: int, batch: int
) -> dict[bool, tuple[float, float]]:
    """The counting triggers' cost on the hot path, on and off in interleaved
    blocks: a claim of a batch (one statement), and marking its rows delivered
    one statement per row as ``record`` does (executemany). Medians in ms."""
    claims: dict[bool, list[float]] = {True: [], False: []}
    marks: dict[bool, list[float]] = {True: [], False: []}
    for block in range(6):
        on = block % 2 == 0
        verb = "ENABLE" if on else "DISABLE"
        async with store.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE recipients {verb} TRIGGER USER"))
        for _ in range(10):
            start = time.perf_counter()
            claimed = await store.claim(
                lane_id=lane_id,
                isp="isp0",
                limit=batch,
                now=NOW,
                claimer="bench:1",
                lease_until=NOW + timedelta(minutes=5),
            )
            claims[on].append(time.perf_counter() - start)
            ids = [{"rid": c.id} for c in claimed]
            start = time.perf_counter()
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(_DELIVERED, ids)
            marks[on].append(time.perf_counter() - start)
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql(_REQUEUE, ids)
    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE recipients ENABLE TRIGGER USER"))
        # The blocks without triggers changed rows uncounted: count them again.
        await conn.execute(text("DELETE FROM recipient_counts"))
        await conn.execute(text(_RECOUNT))
    return {on: (_ms(claims[on])[0], _ms(marks[on])[0]) for on in (True, False)}


async def _reads(store: SQLStore) -> dict[str, float]:
    schedules = {"isp0": SCHEDULE, "default": SCHEDULE}
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "status: campaign_summary": lambda: campaign_summary(store),
        "status: held_messages": lambda: held_messages(store),
        "status: last_events": lambda: last_events(store),
        "status: all_lanes": store.all_lanes,
        "run: queued_isps": store.queued_isps,
        "metrics: queue_totals": lambda: queue_totals(store),
        "report: gather_report": lambda: gather_report(
            store, schedules=schedules, tz=UTC, now=NOW
        ),
    }
    return {name: await _timed(call) for name, call in calls.items()}


async def _plans(store: SQLStore, statements: list[tuple[str, Any]]) -> list[str]:
    scans: list[str] = []
    seen: set[str] = set()
    async with store.engine.connect() as conn:
        for statement, params in statements:
            if statement in seen:
                continue
            seen.add(statement)
            rows = await conn.exec_driver_sql("EXPLAIN " + statement, params)
            plan = "\n".join(str(row[0]) for row in rows)
            paths = sorted(set(_ACCESS.findall(plan)))
            if paths:
                first = " ".join(statement.split())[:70]
                scans.append(f"{first}\n      {'; '.join(paths)}")
    return scans


async def _round_trip(store: SQLStore) -> None:
    async with store.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _size(store: SQLStore) -> tuple[int, int]:
    async with store.engine.connect() as conn:
        table = await conn.scalar(text("SELECT pg_total_relation_size('recipients')"))
        database = await conn.scalar(
            text("SELECT pg_database_size(current_database())")
        )
    return int(table or 0), int(database or 0)


def _status_seconds(config: Path) -> float:
    command = [*WARMUP, "--config", str(config), "status", "--json"]
    return run_measured(command).seconds


async def _measure(
    store: SQLStore, lane_id: int, size: int, args: Any
) -> dict[str, Any]:
    probe = [await _timed(partial(_round_trip, store)) for _ in range(20)]
    capture = Captured(store)
    capture.on = True
    claim_s, filter_s = await _claims(store, lane_id, 1, args.batch)
    reads = await _reads(store)
    capture.on = False
    more_claims, more_filters = await _claims(store, lane_id, args.claims, args.batch)
    claim_s += more_claims
    filter_s += more_filters
    triggers = await _trigger_cost(store, lane_id, args.batch)
    table, database = await _size(store)
    return {
        "size": size,
        "probe": _ms(probe)[0],
        "claim": _ms(claim_s),
        "filter": _ms(filter_s),
        "triggers": triggers,
        "reads": reads,
        "bytes_per_recipient": table / size,
        "database_mb": database / 2**20,
        "scans": await _plans(store, capture.statements),
    }


def _print(results: list[dict[str, Any]], status: dict[int, float]) -> None:
    header = "".join(f"{r['size']:>14,}" for r in results)
    print(f"\n{'recipients':<28}{header}")

    def row(name: str, values: list[str]) -> None:
        print(f"{name:<28}" + "".join(f"{v:>14}" for v in values))

    row("SELECT 1 ms (load probe)", [f"{r['probe']:.2f}" for r in results])
    row("claim ms median", [f"{r['claim'][0]:.2f}" for r in results])
    row("claim ms p95", [f"{r['claim'][1]:.2f}" for r in results])
    for on, label in ((True, "counted"), (False, "no triggers")):
        row(f"claim ms, {label}", [f"{r['triggers'][on][0]:.2f}" for r in results])
        row(
            f"mark 50 sent ms, {label}",
            [f"{r['triggers'][on][1]:.2f}" for r in results],
        )
    row("suppressed_keys ms median", [f"{r['filter'][0]:.2f}" for r in results])
    row("suppressed_keys ms p95", [f"{r['filter'][1]:.2f}" for r in results])
    for name in results[0]["reads"]:
        row(name + " ms", [f"{r['reads'][name] * 1000:.1f}" for r in results])
    row("warmup status --json s", [f"{status[r['size']]:.2f}" for r in results])
    row("bytes per recipient", [f"{r['bytes_per_recipient']:.0f}" for r in results])
    row("database MB", [f"{r['database_mb']:.0f}" for r in results])
    for r in results:
        for line in r["scans"]:
            print(f"  {r['size']:,}: {line}")


async def _insert_cost(server: PostgresServer, rows: int, rounds: int) -> None:
    """Loading with the counting triggers and migration 0012's indexes against
    a copy of recipients without them (same columns and other indexes),
    interleaved: ``rows`` per load, each into an emptied table."""
    store, campaign, _ = await _setup(server.url("postgres"))
    async with store.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bare (LIKE recipients INCLUDING ALL)"))
        for name in await conn.scalars(
            text("SELECT indexname FROM pg_indexes WHERE tablename = 'bare'")
        ):
            if any(part in name for part in ("held", "pending", "retrying")):
                await conn.execute(text(f'DROP INDEX "{name}"'))
    # recipients as migrated; recipients with its triggers off (0012's
    # indexes only); bare (neither).
    kinds = {"counted": "recipients", "indexes only": "recipients", "bare": "bare"}
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    values = {"campaign": campaign, "lo": 0, "hi": rows, "queued_at": NOW}
    for _ in range(rounds):
        for kind, table in kinds.items():
            verb = "DISABLE" if kind == "indexes only" else "ENABLE"
            async with store.engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {table} CASCADE"))
                await conn.execute(text(f"ALTER TABLE {table} {verb} TRIGGER USER"))
            start = time.perf_counter()
            async with store.engine.begin() as conn:
                sql = _LOAD.replace("INTO recipients", f"INTO {table}")
                await conn.execute(text(sql), values)
            seconds[kind].append(time.perf_counter() - start)
    await store.close()
    bare = statistics.median(seconds["bare"])
    print(f"load {rows:,} rows, median of {rounds} interleaved:")
    for kind, samples in seconds.items():
        median = statistics.median(samples)
        print(f"  {kind:<13} {rows / median:>9,.0f} rows/s = {bare / median:.2f}x bare")


async def _run(server: PostgresServer, directory: Path, args: Any) -> None:
    url = server.url("postgres")
    store, campaign, lane_id = await _setup(url)
    config = write_config(directory, url)
    results = []
    status: dict[int, float] = {}
    loaded = 0
    try:
        for size in args.sizes:
            print(f"growing to {size:,} recipients", flush=True)
            seconds = await _grow(store, campaign, loaded, size)
            print(f"  {size - loaded:,} rows + ANALYZE in {seconds:.0f} s", flush=True)
            loaded = size
            results.append(await _measure(store, lane_id, size, args))
            status[size] = _status_seconds(config)
            _print(results, status)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000]
    )
    parser.add_argument("--claims", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument(
        "--insert-cost",
        type=int,
        metavar="ROWS",
        help="only compare loading ROWS with and without the counts and indexes",
    )
    args = parser.parse_args()
    free = shutil.disk_usage(tempfile.gettempdir()).free
    print(f"free in {tempfile.gettempdir()}: {free / 2**30:.1f} GB")
    server = start_postgres()
    try:
        if args.insert_cost:
            asyncio.run(_insert_cost(server, args.insert_cost, rounds=3))
            return
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_run(server, Path(tmp), args))
    finally:
        server.stop()  # removes the data directory


if __name__ == "__main__":
    main()
