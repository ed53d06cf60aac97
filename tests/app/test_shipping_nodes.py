"""Two `warmup run` nodes on one database ship the outbox through one lease per
consumer: each event reaches the receiver once; a node that stops is taken over
once its lease lapses (virtual clock), and a lease lost mid-delivery saves
nothing (its batch goes again: at least once)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.app.test_shipping import NOW, SECRET, Receiver, _outcomes
from warmup.adapters.db.store import SQLStore
from warmup.adapters.webhook import Webhook
from warmup.app.ports import NodeProcess
from warmup.app.shipping import LEASE_MARGIN, Shipper
from warmup.core.event import after_success
from warmup.core.settings import WebhookSettings
from warmup.testing.clock import FakeClock


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


@pytest.fixture
async def second(database_url: str, store: SQLStore) -> AsyncIterator[SQLStore]:
    """A second node: its own engine (connection pool) on the same database."""
    del store  # created first: the schema is there
    opened = await SQLStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _alive(store: SQLStore, *claimers: str, until: timedelta) -> None:
    """Heartbeats, as each `warmup run` writes them (warmup.app.ownership)."""
    for claimer in claimers:
        node, _, pid = claimer.partition(":")
        me = NodeProcess(claimer=claimer, node=node, machine=node, pid=int(pid))
        await store.heartbeat(me, [], now=NOW, alive_until=NOW + until)


def _hook(receiver: Receiver) -> Webhook:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    return Webhook(WebhookSettings(url=url, batch=7), SECRET)


async def test_two_nodes_deliver_each_event_once(
    store: SQLStore, second: SQLStore, receiver: Receiver
) -> None:
    total = await _outcomes(store)
    await _alive(store, "mta1:101", "mta2:202", until=timedelta(hours=1))
    clock = FakeClock(NOW)
    hooks = [_hook(receiver), _hook(receiver)]
    nodes = [
        Shipper(store, [hooks[0]], clock, holder="mta1:101"),
        Shipper(second, [hooks[1]], clock, holder="mta2:202"),
    ]
    try:
        for _ in range(50):  # bounded; both nodes step at the same time
            await asyncio.gather(
                *(n.ship(h) for n, h in zip(nodes, hooks, strict=True))
            )
            clock.advance(timedelta(seconds=1))
    finally:
        for hook in hooks:
            await hook.close()
    counts = Counter(receiver.ids())
    assert sorted(counts) == [e["id"] for e in await store.read_events()]
    assert len(counts) == total and set(counts.values()) == {1}  # once each


async def test_a_stopped_node_is_taken_over_after_its_lease(
    store: SQLStore, second: SQLStore, receiver: Receiver
) -> None:
    await _outcomes(store)
    await _alive(store, "mta1:101", "mta2:202", until=timedelta(hours=1))
    clock = FakeClock(NOW)
    first_hook, second_hook = _hook(receiver), _hook(receiver)
    first = Shipper(store, [first_hook], clock, holder="mta1:101")
    other = Shipper(second, [second_hook], clock, holder="mta2:202")
    try:
        assert await first.ship(first_hook) == 7  # mta1 holds the lease now
        assert await other.ship(second_hook) == 0  # and mta2 leaves it alone
        # mta1 stops (SIGKILL: it never releases); its lease runs out.
        clock.advance(first_hook.lease + LEASE_MARGIN + timedelta(seconds=1))
        for _ in range(20):  # bounded
            await other.ship(second_hook)
        # mta1 comes back to a cursor it no longer holds: it saves nothing.
        cursor = await store.cursor(first_hook.name)
        moved = after_success(cursor, cursor.last_id + 100)
        assert not await store.save_cursor(moved, holder="mta1:101")
        assert await first.ship(first_hook) == 0
    finally:
        await first_hook.close()
        await second_hook.close()
    assert sorted(receiver.ids()) == [e["id"] for e in await store.read_events()]
    assert (await store.cursor(first_hook.name)).last_id == 50


async def test_a_lease_of_a_process_whose_heartbeat_lapsed_is_taken_at_once(
    store: SQLStore, second: SQLStore
) -> None:
    """SIGKILL, then a restart on the same machine: the new process marks the old
    one's heartbeat lapsed at its first beat and takes the lease without waiting."""
    await _alive(store, "mta1:101", "mta2:202", until=timedelta(hours=1))
    hour = timedelta(hours=1)
    assert await store.lease_cursor("webhook:x", "mta1:101", NOW, hour)
    assert not await second.lease_cursor("webhook:x", "mta2:202", NOW, hour)
    me = NodeProcess(claimer="mta2:202", node="mta2", machine="mta2", pid=202)
    await second.heartbeat(me, [], now=NOW, alive_until=NOW + hour, dead=["mta1:101"])
    assert await second.lease_cursor("webhook:x", "mta2:202", NOW, hour)


async def test_a_released_lease_is_taken_at_once(
    store: SQLStore, second: SQLStore
) -> None:
    await _alive(store, "mta1:101", "mta2:202", until=timedelta(hours=1))
    await store.lease_cursor("webhook:x", "mta1:101", NOW, timedelta(minutes=1))
    assert not await second.lease_cursor(
        "webhook:x", "mta2:202", NOW, timedelta(minutes=1)
    )
    await store.release_cursor("webhook:x", "mta1:101")
    assert await second.lease_cursor("webhook:x", "mta2:202", NOW, timedelta(minutes=1))


async def test_an_idle_node_takes_no_lease(
    store: SQLStore, second: SQLStore, receiver: Receiver
) -> None:
    """Nothing to ship: no write, no lease; the other node is free to ship."""
    await _alive(store, "mta1:101", "mta2:202", until=timedelta(hours=1))
    hook = _hook(receiver)
    try:
        assert (
            await Shipper(store, [hook], FakeClock(NOW), holder="mta1:101").ship(hook)
            == 0
        )
    finally:
        await hook.close()
    assert await second.lease_cursor(hook.name, "mta2:202", NOW, timedelta(minutes=1))
