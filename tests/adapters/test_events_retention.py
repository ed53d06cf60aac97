"""retention.events: the outbox is pruned of events older than the retention
that every consumer shipped; never an unshipped one, unless its consumer would
have given it up (past its retry_for), in bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from warmup.adapters.db.schema import events
from warmup.adapters.db.store import SQLStore
from warmup.core.event import DeliveryCursor
from warmup.core.settings import RetentionSettings

NOW = datetime(2030, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
SETTINGS = RetentionSettings(events=timedelta(days=30), batch=3)
LOG, HOOK = "log:/var/log/warmup/events.log", "webhook:http://crm.example/hook"


async def _events(store: SQLStore, ages_in_days: list[int]) -> None:
    """One event per age, oldest first (ids 1, 2, …)."""
    rows = [
        {"type": "delivered", "at": NOW - age * DAY, "recipient": f"u{i}@x.example"}
        for i, age in enumerate(ages_in_days)
    ]
    async with store.engine.begin() as conn:
        await conn.execute(insert(events), rows)


async def _ids(store: SQLStore) -> list[int]:
    return [int(e["id"]) for e in await store.read_events()]


async def test_only_old_events_every_consumer_shipped_go(store: SQLStore) -> None:
    await _events(store, [90, 80, 70, 60, 50, 40, 31, 29, 1])  # ids 1-9
    await store.save_cursor(DeliveryCursor(name=LOG, last_id=9))
    await store.save_cursor(DeliveryCursor(name=HOOK, last_id=5))
    consumers = [(LOG, timedelta(days=36500)), (HOOK, timedelta(days=365))]
    deleted = await store.prune_events(SETTINGS, consumers, NOW)
    # 1-5 shipped everywhere and old; 6-7 old but the webhook has still to take
    # them (and would retry them for a year); 8-9 younger than 30 days.
    assert deleted == 5  # in batches of 3: 3 + 2
    assert await _ids(store) == [6, 7, 8, 9]
    assert await store.prune_events(SETTINGS, consumers, NOW) == 0


async def test_past_retry_for_an_unshipped_event_goes_too(store: SQLStore) -> None:
    await _events(store, [60, 45, 35, 20])  # ids 1-4
    await store.save_cursor(DeliveryCursor(name=HOOK, last_id=1))
    # The webhook gives a batch up after 40 days: 60 and 45 days old are past
    # that; 35 is not (it may still arrive); 20 is inside the retention.
    deleted = await store.prune_events(SETTINGS, [(HOOK, timedelta(days=40))], NOW)
    assert deleted == 2
    assert await _ids(store) == [3, 4]


async def test_a_consumer_without_a_cursor_keeps_everything(store: SQLStore) -> None:
    await _events(store, [90, 60, 1])
    log_forever = [(LOG, timedelta(days=36500))]
    assert await store.prune_events(SETTINGS, log_forever, NOW) == 0
    # With no consumer at all, the retention alone decides.
    assert await store.prune_events(SETTINGS, [], NOW) == 2
    assert await _ids(store) == [3]


async def test_the_newest_event_stays_so_ids_are_never_reused(
    store: SQLStore,
) -> None:
    """SQLite numbers a new row after the highest id left: were every event
    deleted, the next would get id 1 again, and a cursor past it would skip it."""
    await _events(store, [90, 80, 70])
    await store.save_cursor(DeliveryCursor(name=HOOK, last_id=3))
    assert await store.prune_events(SETTINGS, [(HOOK, DAY)], NOW) == 2
    assert await _ids(store) == [3]
    await _events(store, [0])
    assert await _ids(store) == [3, 4]  # after the cursor: it will be shipped
