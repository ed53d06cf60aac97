"""Store contract tests, run on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from warmup.adapters.db.schema import (
    attempts,
    bounce_events,
    lane_events,
    metadata,
    recipients,
)
from warmup.adapters.db.store import SQLStore, async_url
from warmup.app.ports import TemplateRecord
from warmup.core.attempt import AttemptRecord, LaneClaim, LaneRecord, TickRecord
from warmup.core.errors import InputError, StoreError
from warmup.core.lanes.backoff import RetryDecision
from warmup.core.lanes.lane import Lane
from warmup.core.model import RecipientState, SuppressionKind, Verdict
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.recipients.suppression import make_suppression

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
TEMPLATE = TemplateRecord(
    name="t.eml", sha256="a" * 64, content=b"Subject: x\r\n\r\nhi"
)


def _recipient(address: str, score: float | None = None) -> NewRecipient:
    return NewRecipient(
        address=address,
        domain=address.rpartition("@")[2],
        engagement_score=score,
        engaged_at=None,
        fields={"email": address},
    )


# Alembic cannot compare expression indexes (priority DESC): it reports them as
# removed and re-added; their presence is checked by name instead.
EXPRESSION_INDEXES = {"ix_recipients_queued"}


def _diff(connection: Connection) -> tuple[list[object], set[str]]:
    context = MigrationContext.configure(connection)
    differences = [
        d
        for d in compare_metadata(context, metadata)
        if not (
            isinstance(d, tuple)
            and d[0] in ("add_index", "remove_index")
            and d[1].name in EXPRESSION_INDEXES
        )
    ]
    names = {str(i["name"]) for i in inspect(connection).get_indexes("recipients")}
    return differences, names


async def test_migrations_produce_exactly_the_schema(store: SQLStore) -> None:
    async with store.engine.connect() as conn:
        differences, indexes = await conn.run_sync(_diff)
    assert differences == []
    assert indexes >= EXPRESSION_INDEXES


async def test_reopening_applies_no_migration_twice(database_url: str) -> None:
    first = await SQLStore.open(database_url)
    await first.close()
    second = await SQLStore.open(database_url)
    assert await second.count_suppressions() == 0
    await second.close()


async def test_campaign_is_created_once_and_guards_its_template(
    store: SQLStore,
) -> None:
    created = await store.ensure_campaign("spring", TEMPLATE, NOW)
    again = await store.ensure_campaign("spring", TEMPLATE, NOW)
    assert created.created and not again.created and created.id == again.id
    other = TemplateRecord(name="u.eml", sha256="b" * 64, content=b"Subject: y\r\n\r\n")
    with pytest.raises(InputError, match="different template"):
        await store.ensure_campaign("spring", other, NOW)


async def test_duplicates_in_a_campaign_are_skipped_and_counted(
    store: SQLStore,
) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    batch = [
        _recipient("a@example.com"),
        _recipient("b@example.com"),
        _recipient("a@example.com"),
    ]
    inserted = await store.insert_recipients(campaign.id, batch, ["x", None, "x"], NOW)
    assert inserted == 2
    assert await store.insert_recipients(campaign.id, batch[:1], ["x"], NOW) == 0
    assert await store.count_recipients(campaign.id) == {"queued": 2}


async def test_instants_round_trip_as_aware_utc(store: SQLStore) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2030, 1, 2, 9, 30, tzinfo=tokyo)
    await store.insert_recipients(
        campaign.id, [_recipient("a@example.com")], [None], local
    )
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(recipients.c.queued_at))).scalar_one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(store: SQLStore) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    with pytest.raises(StoreError, match="naive datetime"):
        await store.insert_recipients(
            campaign.id, [_recipient("a@example.com")], [None], NOW.replace(tzinfo=None)
        )


async def test_suppressions_add_lookup_remove(store: SQLStore) -> None:
    entries = [
        make_suppression("User@Example.COM", reason="hard", source="t", now=NOW),
        make_suppression("@Dead.example", reason="hostunknown", source="t", now=NOW),
    ]
    assert await store.add_suppressions(entries) == 2
    assert await store.add_suppressions(entries[:1]) == 0
    keys = ["User@example.com", "user@example.com", "@dead.example", "@example.com"]
    assert await store.suppressed_keys(keys) == {"User@example.com", "@dead.example"}
    listed = [e async for e in store.iter_suppressions()]
    assert [(e.address, e.kind) for e in listed] == [
        ("User@example.com", SuppressionKind.address),
        ("@dead.example", SuppressionKind.domain),
    ]
    assert [e.address async for e in store.iter_suppressions(reason="hard")] == [
        "User@example.com"
    ]
    assert await store.remove_suppressions(["@dead.example", "nobody@x.org"]) == 1
    assert await store.count_suppressions() == 1


async def test_large_lookups_are_chunked(store: SQLStore) -> None:
    entries = [
        make_suppression(f"u{i}@example.com", reason="r", source="t", now=NOW)
        for i in range(12_000)
    ]
    assert await store.add_suppressions(entries) == 12_000
    keys = [f"u{i}@example.com" for i in range(0, 24_000, 2)]
    assert len(await store.suppressed_keys(keys)) == 6_000


async def test_concurrent_opens_migrate_once(database_url: str) -> None:
    stores = await asyncio.gather(*(SQLStore.open(database_url) for _ in range(6)))
    for opened in stores:
        assert await opened.count_suppressions() == 0
        await opened.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///warmup.db", "sqlite+aiosqlite:///warmup.db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_async_url(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://h/db", "not a url"])
def test_unsupported_urls_are_store_errors(bad: str) -> None:
    with pytest.raises(StoreError):
        async_url(bad)


async def test_unreachable_database_is_a_store_error(tmp_path) -> None:
    with pytest.raises(StoreError, match="open"):
        await SQLStore.open(f"sqlite:///{tmp_path}/missing/dir/x.db")


async def test_a_lost_lease_is_not_overwritten_by_its_old_claimer(
    store: SQLStore,
) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    await store.insert_recipients(
        campaign.id, [_recipient("a@example.com")], ["x"], NOW
    )
    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
    (first,) = await store.claim(
        lane_id=lane_id, isp="x", limit=1, now=NOW, claimer="old:1", lease_until=NOW
    )
    await store.release_expired_leases(NOW + timedelta(seconds=1))
    (again,) = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=1,
        now=NOW,
        claimer="new:1",
        lease_until=NOW + timedelta(hours=1),
    )
    assert again.id == first.id
    decision = RetryDecision(state=RecipientState.delivered)
    late = TickRecord(
        claimer="old:1",
        attempts=[
            AttemptRecord(
                recipient_id=first.id,
                lane_id=lane_id,
                attempted_at=NOW,
                verdict=Verdict.delivered,
                reason="delivered",
                code=250,
                enhanced="2.0.0",
                reply="250 ok",
                rule="r",
                decision=decision,
                attempts=1,
            )
        ],
    )
    await store.record(late, NOW)
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(recipients.c.state, recipients.c.claimed_by).where(
                    recipients.c.id == first.id
                )
            )
        ).one()
    assert (row.state, row.claimed_by) == ("sending", "new:1")  # still the new claim


@pytest.mark.parametrize("owner", ["n:1", None])
async def test_recorded_retry_instants_compare_like_any_other(
    store: SQLStore, owner: str | None
) -> None:
    """record() writes attempts through the driver's executemany: the instants
    must be stored exactly as SQLAlchemy stores them (a retry due at T is claimable
    at T, not a microsecond before), and read back as the same aware UTC."""
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    await store.insert_recipients(
        campaign.id, [_recipient("a@example.com")], ["x"], NOW
    )
    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
    (claimed,) = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=1,
        now=NOW,
        claimer="n:1",
        lease_until=NOW + timedelta(hours=1),
    )
    retry_at = datetime(2030, 1, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    sent_at = NOW + timedelta(microseconds=250)
    tick = TickRecord(
        claimer=owner,  # None: no ownership check
        attempts=[
            AttemptRecord(
                recipient_id=claimed.id,
                lane_id=lane_id,
                attempted_at=sent_at,
                verdict=Verdict.soft,
                reason="mailbox_full",
                code=452,
                enhanced="4.2.2",
                reply="452 4.2.2 full",
                rule="r",
                decision=RetryDecision(
                    state=RecipientState.queued,
                    next_attempt_at=retry_at,
                    keep_lane=True,
                ),
                attempts=1,
            )
        ],
    )
    await store.record(tick, NOW)
    due = retry_at.astimezone(UTC)
    early = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=1,
        now=due - timedelta(microseconds=1),
        claimer="n:1",
        lease_until=due + timedelta(hours=1),
    )
    assert early == []
    (again,) = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=1,
        now=due,
        claimer="n:1",
        lease_until=due + timedelta(hours=1),
    )
    assert (again.id, again.attempts) == (claimed.id, 1)
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(attempts.c.attempted_at, attempts.c.reply, attempts.c.code)
            )
        ).one()
    assert (row.attempted_at, row.reply, row.code) == (sent_at, "452 4.2.2 full", 452)
    assert row.attempted_at.tzinfo == UTC


async def test_a_dead_domain_bounces_its_recipients_with_events(
    store: SQLStore,
) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    batch = [_recipient("a@gone.test"), _recipient("b@gone.test")]
    await store.insert_recipients(campaign.id, batch, [None, None], NOW)
    assert await store.fail_domain("gone.test", "no mail for gone.test", NOW) == 2
    events = await store.read_events()
    assert [(e["type"], e["recipient"], e["source"]) for e in events] == [
        ("bounced", "a@gone.test", "dns"),
        ("bounced", "b@gone.test", "dns"),
    ]
    assert {e["reason"] for e in events} == {"hostunknown"}


async def test_claim_lanes_claims_for_each_lane_under_its_own_lease(
    store: SQLStore,
) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    rows = [_recipient(f"u{n}@example.com") for n in range(5)]
    await store.insert_recipients(campaign.id, rows, ["x"] * 5, NOW)
    await store.insert_recipients(
        campaign.id, [_recipient("v@example.org")], ["y"], NOW
    )
    first, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
    second, _ = await store.ensure_lane(Lane(ip="127.0.0.3", isp="x"), NOW)
    third, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="y"), NOW)
    leases = [NOW + timedelta(minutes=n) for n in (1, 2, 3)]
    got = await store.claim_lanes(
        [
            LaneClaim(lane_id=first, isp="x", limit=3, lease_until=leases[0]),
            LaneClaim(lane_id=second, isp="x", limit=3, lease_until=leases[1]),
            LaneClaim(lane_id=third, isp="y", limit=3, lease_until=leases[2]),
        ],
        now=NOW,
        claimer="n:1",
    )
    # In the order asked: the first lane takes 3, the second what is left.
    assert [len(claimed) for claimed in got] == [3, 2, 1]
    ids = [c.id for claimed in got for c in claimed]
    assert len(set(ids)) == 6
    for claimed, lease in zip(got, leases, strict=True):
        assert {c.lease_until for c in claimed} == {lease}
    async with store.engine.connect() as conn:
        stored = dict(
            (
                await conn.execute(
                    select(recipients.c.id, recipients.c.claimed_until).where(
                        recipients.c.state == "sending"
                    )
                )
            ).all()
        )
    assert len(stored) == 6
    assert {stored[c.id].replace(tzinfo=UTC) for c in got[1]} == {
        leases[1]
    }  # the lease each recipient is held under in the store


async def test_a_claim_hands_back_the_recipient_as_queued(store: SQLStore) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    tokyo = timezone(timedelta(hours=9))
    queued = datetime(2030, 1, 1, 9, 30, tzinfo=tokyo)
    await store.insert_recipients(
        campaign.id,
        [_recipient("a@example.com", 0.2), _recipient("b@example.com", 0.9)],
        ["x", "x"],
        queued,
    )
    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
    claimed = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=5,
        now=NOW,
        claimer="n:1",
        lease_until=NOW + timedelta(hours=1),
    )
    assert [c.address for c in claimed] == ["b@example.com", "a@example.com"]
    first = claimed[0]
    assert first.queued_at == queued and first.queued_at.utcoffset() == timedelta(0)
    assert first.fields == {"email": "b@example.com"}
    assert (first.campaign_id, first.attempts, first.deadline_at) == (
        campaign.id,
        0,
        None,
    )
    again = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=5,
        now=NOW,
        claimer="n:2",
        lease_until=NOW + timedelta(hours=1),
    )
    assert again == []  # leased: nobody else takes them


async def test_a_failed_sqlite_write_is_rolled_back_and_the_store_goes_on(
    tmp_path: Path,
) -> None:
    store = await SQLStore.open(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
        await store.insert_recipients(
            campaign.id, [_recipient("a@example.com")], ["x"], NOW
        )

        def half_done(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE recipients SET attempts = 7")
            raise RuntimeError("in the middle")

        for _ in range(2):  # the pooled connection is not left in a transaction
            with pytest.raises(RuntimeError, match="in the middle"):
                await store.database.sqlite_call(half_done, write=True)
        lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
        (claimed,) = await store.claim(
            lane_id=lane_id, isp="x", limit=1, now=NOW, claimer="n:1", lease_until=NOW
        )
        assert claimed.attempts == 0
    finally:
        await store.close()


async def test_ensure_lanes_loads_and_creates_in_one_go_in_the_order_asked(
    store: SQLStore,
) -> None:
    old_id, _ = await store.ensure_lane(Lane(ip="127.0.0.3", isp="x"), NOW)
    tick = TickRecord()
    tick.lanes[old_id] = LaneRecord(
        lane_id=old_id,
        lane=Lane(ip="127.0.0.3", isp="x", ramp_day=7),
        allowance_per_hour=1.0,
    )
    await store.record(tick, NOW)
    asked = [
        Lane(ip="127.0.0.2", isp="x", ramp_day=2),
        Lane(ip="127.0.0.3", isp="x", ramp_day=2),  # stored: kept as it is
        Lane(ip="127.0.0.3", isp="y", ramp_day=3),
    ]
    got = await store.ensure_lanes(asked, NOW)
    assert [(lane.ip, lane.isp, lane.ramp_day) for _, lane in got] == [
        ("127.0.0.2", "x", 2),
        ("127.0.0.3", "x", 7),
        ("127.0.0.3", "y", 3),
    ]
    assert got[1][0] == old_id and len({lane_id for lane_id, _ in got}) == 3
    # Again, and one by one: the same lanes, nothing created twice.
    assert [i for i, _ in await store.ensure_lanes(asked[::-1], NOW)] == [
        i for i, _ in got[::-1]
    ]
    assert [(await store.ensure_lane(lane, NOW))[0] for lane in asked] == [
        i for i, _ in got
    ]
    assert await store.ensure_lanes([], NOW) == []


async def test_ensure_lanes_takes_more_lanes_than_one_query_holds(
    store: SQLStore,
) -> None:
    asked = [Lane(ip=f"10.0.{n // 250}.{n % 250}", isp="x") for n in range(901)]
    got = await store.ensure_lanes(asked, NOW)
    assert [(lane.ip, lane.isp) for _, lane in got] == [(a.ip, a.isp) for a in asked]
    assert len({lane_id for lane_id, _ in got}) == 901
    assert [i for i, _ in await store.ensure_lanes(asked, NOW)] == [i for i, _ in got]


async def test_lane_windows_are_each_lanes_outcomes_since_its_last_reaction(
    store: SQLStore,
) -> None:
    """Three lanes, read together: each gets its own replies and applied late
    reports after ``since`` and after its own last step back, oldest first."""
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    await store.insert_recipients(
        campaign.id, [_recipient("u@example.com")], ["x"], NOW
    )
    ids = [
        lane_id
        for lane_id, _ in await store.ensure_lanes(
            [Lane(ip=f"127.0.0.{n}", isp="x") for n in (2, 3, 4)], NOW
        )
    ]
    first, second, third = ids
    hour = timedelta(hours=1)
    async with store.engine.begin() as conn:
        rid = (await conn.execute(select(recipients.c.id))).scalar_one()
        await conn.execute(
            attempts.insert(),
            [
                {
                    "recipient_id": rid,
                    "lane_id": lane_id,
                    "attempted_at": NOW - hours * hour,
                    "verdict": verdict,
                    "reason": "r",
                }
                for lane_id, hours, verdict in [
                    (first, 30, "delivered"),  # before since
                    (first, 5, "hard"),
                    (first, 1, "delivered"),
                    (second, 5, "delivered"),  # before its step back
                    (second, 2, "soft"),
                ]
            ],
        )
        await conn.execute(
            lane_events.insert(),
            [
                {"lane_id": second, "at": NOW - 3 * hour, "cause": "step_back"},
                {"lane_id": first, "at": NOW - 10 * hour, "cause": "throttle"},
            ],
        )
        await conn.execute(
            bounce_events.insert(),
            [
                {
                    "key": f"k{n}",
                    "received_at": NOW,
                    "source": "s",
                    "kind": "dsn",
                    "address": "u@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "verdict": verdict,
                    "reason": "r",
                    "lane_id": first,
                    "outcome": outcome,
                    "applied_at": NOW - 3 * hour,
                }
                for n, (verdict, outcome) in enumerate(
                    [("hard", "suppressed"), ("soft", "retry")]  # the soft: not late
                )
            ],
        )
    windows = await store.lane_windows(ids, NOW - 24 * hour)
    assert windows == {
        first: [
            (NOW - 5 * hour, Verdict.hard, False),
            (NOW - 3 * hour, Verdict.hard, True),
            (NOW - hour, Verdict.delivered, False),
        ],
        second: [(NOW - 2 * hour, Verdict.soft, False)],
        third: [],
    }
    # One lane alone reads the same as with the others.
    assert await store.lane_windows([second], NOW - 24 * hour) == {
        second: windows[second]
    }
