"""The store enforces one owner per source IP (SQLite and PostgreSQL): heartbeats,
take-over only after a lapse, and no claims or lane writes for a non-owner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from warmup.adapters.db.store import SQLStore
from warmup.app.ports import Heartbeat, NodeProcess, TemplateRecord
from warmup.core.attempt import LaneRecord, TickRecord
from warmup.core.errors import StoreError
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.recipients.recipient import parse_recipient_row

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
LEASE = timedelta(seconds=30)
IP = "127.0.0.31"
A = NodeProcess(claimer="node-a:100", node="node-a", machine="m1", pid=100)
B = NodeProcess(claimer="node-b:200", node="node-b", machine="m2", pid=200)


async def _beat(
    store: SQLStore, me: NodeProcess, now: datetime, dead: Sequence[str] = ()
) -> Heartbeat:
    return await store.heartbeat(me, [IP], now=now, alive_until=now + LEASE, dead=dead)


async def _queue(store: SQLStore, count: int) -> None:
    template = TemplateRecord(
        name="t.eml", sha256="e" * 64, content=b"Subject: x\r\n\r\nhi"
    )
    campaign = await store.ensure_campaign("c", template, NOW)
    rows = [
        parse_recipient_row({"email": f"u{i}@gmail.com"}, set()) for i in range(count)
    ]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * count, NOW)


async def test_the_second_process_waits_until_the_first_lapses(store: SQLStore) -> None:
    first = await _beat(store, A, NOW)
    assert first.owned == {IP}
    second = await _beat(store, B, NOW + timedelta(seconds=5))
    assert second.owned == frozenset()
    assert second.waiting[IP].claimer == A.claimer
    assert second.waiting[IP].node == "node-a"
    # A renews in time: B still waits.
    await _beat(store, A, NOW + timedelta(seconds=20))
    again = await _beat(store, B, NOW + timedelta(seconds=45))
    assert again.owned == frozenset()
    # A stops beating; once its heartbeat lapsed B takes the IP and A's claims.
    lane_id, _ = await store.ensure_lane(Lane(ip=IP, isp="gmail"), NOW)
    await _queue(store, 5)
    claimed = await store.claim(
        lane_id=lane_id,
        isp="gmail",
        limit=5,
        now=NOW,
        claimer=A.claimer,
        lease_until=NOW + timedelta(hours=4),
    )
    assert len(claimed) == 5
    taken = await _beat(store, B, NOW + timedelta(seconds=51))
    assert taken.owned == {IP}
    assert taken.taken_over == {IP: A.claimer}
    assert taken.released == 5
    assert (await store.count_recipients()) == {"queued": 5}
    owners = await store.ip_owners()
    assert [(o.ip, o.claimer) for o in owners] == [(IP, B.claimer)]


async def test_a_dead_local_process_is_taken_over_at_once(store: SQLStore) -> None:
    await _beat(store, A, NOW)
    same_machine = NodeProcess(
        claimer="node-a:101", node="node-a", machine="m1", pid=101
    )
    assert [p.claimer for p in await store.local_processes("m1", NOW)] == [A.claimer]
    beat = await _beat(
        store, same_machine, NOW + timedelta(seconds=1), dead=[A.claimer]
    )
    assert beat.owned == {IP}


async def test_a_clean_stop_frees_the_ip_at_once(store: SQLStore) -> None:
    await _beat(store, A, NOW)
    await store.leave(A.claimer, NOW)
    assert (await _beat(store, B, NOW + timedelta(seconds=1))).owned == {IP}


async def test_only_the_owner_claims_and_writes_the_lane(store: SQLStore) -> None:
    await _beat(store, A, NOW)
    lane_id, lane = await store.ensure_lane(Lane(ip=IP, isp="gmail"), NOW)
    await _queue(store, 3)
    refused = await store.claim(
        lane_id=lane_id,
        isp="gmail",
        limit=3,
        now=NOW,
        claimer=B.claimer,
        lease_until=NOW + timedelta(minutes=5),
    )
    assert refused == []
    for claimer, attempted in ((B.claimer, 99), (A.claimer, 7)):
        written = replace(lane, stats=DayStats(attempted=attempted))
        tick = TickRecord(claimer=claimer)
        tick.lanes[lane_id] = LaneRecord(
            lane_id=lane_id, lane=written, allowance_per_hour=60
        )
        await store.record(tick, NOW)
    ((_, stored, _),) = await store.all_lanes()
    assert stored.stats.attempted == 7  # B's write was refused


async def test_two_processes_racing_for_a_lapsed_ip_one_wins(
    store: SQLStore, database_url: str
) -> None:
    await _beat(store, A, NOW)
    other = await SQLStore.open(database_url)
    try:
        later = NOW + timedelta(minutes=1)
        c = NodeProcess(claimer="node-c:300", node="node-c", machine="m3", pid=300)
        beats = await asyncio.gather(_beat(store, B, later), _beat(other, c, later))
    finally:
        await other.close()
    assert sorted(len(b.owned) for b in beats) == [0, 1]


@pytest.mark.parametrize(
    ("table", "read"),
    [
        ("controls", lambda s: s.control_version()),
        ("controls", lambda s: s.controls_after(0)),
        ("campaigns", lambda s: s.cancelled_campaign_ids()),
        ("lanes", lambda s: s.all_lanes()),
        ("recipients", lambda s: s.claims_per_lane()),
        ("ip_leases", lambda s: s.ip_owners()),
    ],
)
async def test_reads_of_the_tick_fail_as_store_errors(
    store: SQLStore, table: str, read: Callable[[SQLStore], Awaitable[object]]
) -> None:
    """What the dispatcher reads each beat (controls, overflow plan, owners):
    a database error is the StoreError the runner logs as one line."""
    async with store.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    with pytest.raises(StoreError, match="database error during"):
        await read(store)
