"""recipient_counts (migration 0012): the counts `status` and the dispatcher
read instead of scanning the queue stay equal to a count of the rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from warmup.adapters.db.reporting import campaign_summary, held_messages
from warmup.adapters.db.schema import HELD_QUEUED, campaigns, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.ports import TemplateRecord
from warmup.app.sign import HELD_PREFIX
from warmup.core.lanes.lane import Lane
from warmup.core.recipients.recipient import NewRecipient

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
TEMPLATE = TemplateRecord(
    name="t.eml", sha256="c" * 64, content=b"Subject: x\r\n\r\nhi"
)


def _new(address: str) -> NewRecipient:
    return NewRecipient(
        address=address,
        domain=address.rpartition("@")[2],
        engagement_score=None,
        engaged_at=None,
        fields={},
    )


async def _scanned(
    store: SQLStore,
) -> tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    """What the counts must say, counted the slow way."""
    by_state = select(recipients.c.state, func.count()).group_by(recipients.c.state)
    by_campaign = (
        select(campaigns.c.name, recipients.c.state, func.count())
        .join(campaigns, campaigns.c.id == recipients.c.campaign_id)
        .group_by(campaigns.c.name, recipients.c.state)
    )
    by_isp = (
        select(recipients.c.isp, func.count())
        .where(recipients.c.state == "queued", recipients.c.isp.is_not(None))
        .group_by(recipients.c.isp)
    )
    async with store.engine.connect() as conn:
        states = {str(s): int(n) for s, n in (await conn.execute(by_state)).all()}
        isps = {str(i): int(n) for i, n in (await conn.execute(by_isp)).all()}
        campaigns_: dict[str, dict[str, int]] = {}
        for name, state, n in (await conn.execute(by_campaign)).all():
            campaigns_.setdefault(str(name), {})[str(state)] = int(n)
    return states, isps, campaigns_


async def _listed(store: SQLStore) -> dict[str, dict[str, int]]:
    """`warmup campaign list`'s counts (campaigns with none left out)."""
    return {
        str(row["name"]): dict(row["counts"])
        for row in await store.campaign_rows()
        if row["counts"]
    }


async def _check(store: SQLStore) -> None:
    states, isps, per_campaign = await _scanned(store)
    assert await store.count_recipients() == states
    assert await store.queued_isps() == isps
    assert await _listed(store) == per_campaign
    await store.compact_recipient_counts()
    assert await store.count_recipients() == states
    assert await store.queued_isps() == isps
    assert await _listed(store) == per_campaign


async def test_counts_follow_every_kind_of_write(store: SQLStore) -> None:
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    other = await store.ensure_campaign("d", TEMPLATE, NOW)
    batch = [_new(f"u{n}@x.test") for n in range(6)] + [_new("v@unrouted.test")]
    await store.insert_recipients(campaign.id, batch, ["x"] * 6 + [None], NOW)
    await store.insert_recipients(other.id, [_new("w@x.test")], ["x"], NOW)
    # The same rows again: nothing inserted, nothing counted.
    await store.insert_recipients(campaign.id, batch[:2], ["x", "x"], NOW)
    await _check(store)
    assert await store.queued_isps() == {"x": 7}

    lane_id, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="x"), NOW)
    claimed = await store.claim(
        lane_id=lane_id,
        isp="x",
        limit=3,
        now=NOW,
        claimer="n:1",
        lease_until=NOW + timedelta(minutes=1),
    )
    assert len(claimed) == 3
    await _check(store)
    assert (await store.count_recipients())["sending"] == 3

    await store.route_domain("unrouted.test", "y", NOW)
    await store.release_claims("n:1", NOW)
    await _check(store)
    assert await store.queued_isps() == {"x": 7, "y": 1}

    async with store.engine.begin() as conn:
        await conn.execute(
            update(recipients)
            .where(recipients.c.address == "u0@x.test")
            .values(state="delivered")
        )
        await conn.execute(
            delete(recipients).where(recipients.c.address == "u1@x.test")
        )
    await _check(store)
    summary = {item["name"]: item for item in await campaign_summary(store)}
    assert summary["c"]["delivered"] == 1
    assert summary["c"]["total"] == 6
    assert summary["d"]["queued"] == summary["d"]["total"] == 1


async def test_a_batch_of_several_isps_counts_only_the_rows_it_inserted(
    store: SQLStore,
) -> None:
    # SQLite counts a list's batch per ISP from the rows actually inserted
    # (migration 0013); duplicates of one ISP must not shift another's count.
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    first = [_new("a@g.test"), _new("b@m.test"), _new("c@y.test")]
    await store.insert_recipients(campaign.id, first, ["g", "m", None], NOW)
    again = [_new("a@g.test"), _new("d@g.test"), _new("b@m.test"), _new("c@y.test")]
    inserted = await store.insert_recipients(
        campaign.id, again, ["g", "g", "m", None], NOW
    )
    assert inserted == 1
    await _check(store)
    assert await store.queued_isps() == {"g": 2, "m": 1}
    assert await store.count_recipients(campaign.id) == {"queued": 4}


async def test_held_recipients_are_listed_by_the_partial_index_predicate(
    store: SQLStore,
) -> None:
    assert f"LIKE '{HELD_PREFIX}%'" in HELD_QUEUED  # the index spells the prefix
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    await store.insert_recipients(
        campaign.id, [_new("a@x.test"), _new("b@x.test")], ["x", "x"], NOW
    )
    async with store.engine.begin() as conn:
        await conn.execute(
            update(recipients)
            .where(recipients.c.address == "a@x.test")
            .values(last_reply=HELD_PREFIX + "no DKIM key for x.test")
        )
    assert await held_messages(store) == [
        {"campaign": "c", "reason": "held: no DKIM key for x.test", "recipients": 1}
    ]


async def test_two_writers_of_one_key_never_wait_on_each_other(
    store: SQLStore,
) -> None:
    """On PostgreSQL each transaction counts in its own row: a second node's
    write to the same campaign, ISP and state goes through while the first
    transaction is still open (SQLite has one writer: nothing to show)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("one writer at a time on SQLite")
    campaign = await store.ensure_campaign("c", TEMPLATE, NOW)
    await store.insert_recipients(
        campaign.id, [_new("a@x.test"), _new("b@x.test")], ["x", "x"], NOW
    )

    def delivered(address: str) -> Any:
        return (
            update(recipients)
            .where(recipients.c.address == address)
            .values(state="delivered")
        )

    async with store.engine.connect() as first, store.engine.connect() as second:
        await first.begin()
        await first.execute(delivered("a@x.test"))
        await second.begin()
        await asyncio.wait_for(second.execute(delivered("b@x.test")), timeout=10)
        await second.commit()
        await first.commit()
    await _check(store)
    assert (await store.count_recipients()) == {"delivered": 2}
