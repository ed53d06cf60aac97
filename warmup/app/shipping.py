"""Shipping outcome events from the outbox to their consumers: webhooks and the
accounting log. Each consumer has its own cursor in the store and its own task,
so a dead endpoint never slows sending nor another consumer.

One shipper per consumer across nodes: before each step a shipper takes (or
renews) the lease on the consumer's cursor in the store; while another node's
lease runs it leaves that consumer alone, so two `warmup run` on one database
deliver each event once per consumer. A lapsed lease (its node died or hangs) is
taken over, and so is one whose holder's heartbeat lapsed (a process SIGKILLed
and restarted on its machine is known gone at the next beat); a cursor is saved
only by its lease's holder. The accounting log
is a consumer like any webhook: each event is written once, into the log file of
whichever node shipped it (collect every node's file).

At least once: the cursor moves only after a consumer took a batch, so a crash
in between (or a lease lost during a delivery) sends that batch again, with the
same event ids. A consumer failing
for longer than its ``retry_for`` gives that batch up, loudly (the events stay in
the outbox: `warmup events` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from warmup.app.ports import Clock
from warmup.app.store_rows import EventRow
from warmup.core.errors import WarmupError
from warmup.core.event import DeliveryCursor, after_failure, after_success

__all__ = ["LEASE_MARGIN", "DeliveryError", "EventSink", "EventStore", "Shipper"]

logger = logging.getLogger(__name__)

#: Added to a sink's longest delivery: how long a shipper's lease on a consumer
#: outlives its last step (a node that died is taken over after that).
LEASE_MARGIN = timedelta(seconds=30)


class DeliveryError(WarmupError, ConnectionError):
    """A consumer did not take a batch of events."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail
        super().__init__(f"events to {name} not delivered: {detail}")


class EventSink(Protocol):
    name: str  # unique: names the cursor
    types: frozenset[str]  # the event types it wants; empty: every type
    retry_for: timedelta
    batch: int
    lease: timedelta  # the longest one delivery may take (the lease covers it)

    async def deliver(self, events: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Take the events or raise DeliveryError."""
        ...


class EventStore(Protocol):
    async def read_events(
        self,
        *,
        after: int = 0,
        since: datetime | None = None,
        types: Sequence[str] = (),
        limit: int = 1000,
    ) -> list[EventRow]: ...

    async def cursor(self, name: str) -> DeliveryCursor: ...

    async def save_cursor(
        self, cursor: DeliveryCursor, error: str | None = None, holder: str = ""
    ) -> bool: ...

    async def lease_cursor(
        self, name: str, holder: str, now: datetime, lease_for: timedelta
    ) -> bool: ...

    async def release_cursor(self, name: str, holder: str) -> None: ...


class Shipper:
    def __init__(
        self,
        store: EventStore,
        sinks: Sequence[EventSink],
        clock: Clock,
        every: timedelta = timedelta(seconds=1),
        holder: str = "",
    ) -> None:
        self.store = store
        self.sinks = list(sinks)
        self.clock = clock
        self.every = every
        # This process (node:pid): with a name, one shipper per consumer across
        # nodes (the cursor's lease); "" ships without a lease (one process).
        self.holder = holder

    async def ship(self, sink: EventSink) -> int:
        """One step for ``sink``: deliver its next batch if it is due; returns
        how many events it took (0: nothing due, nothing new, or a failure)."""
        now = self.clock.now()
        due = await self._due(sink, now)
        if due is None:
            return 0
        if self.holder:  # only with work to do: an idle node writes nothing
            lease_for = sink.lease + LEASE_MARGIN
            if not await self.store.lease_cursor(
                sink.name, self.holder, now, lease_for
            ):
                return 0  # another node ships this consumer's events
            due = await self._due(sink, now)  # as the last holder left it
            if due is None:
                return 0
        cursor, read = due
        wanted = [e for e in read if not sink.types or e["type"] in sink.types]
        last_id = int(read[-1]["id"])
        if not wanted:  # nothing for this consumer: just move on
            await self._save(after_success(cursor, last_id))
            return 0
        try:
            await sink.deliver(wanted, now)
        except DeliveryError as exc:
            failed, gave_up = after_failure(
                cursor, now=now, retry_for=sink.retry_for, last_id=last_id
            )
            if gave_up:
                logger.error(
                    "%s; failing since %s: gave up %d events (ids %d-%d)",
                    exc,
                    cursor.failing_since,
                    len(wanted),
                    wanted[0]["id"],
                    last_id,
                )
            else:
                logger.warning("%s; next try at %s", exc, failed.next_try_at)
            await self._save(failed, error=exc.detail)
            return 0
        if not await self._save(after_success(cursor, last_id)):
            logger.warning(
                "%s: lease lost during a delivery; its holder sends the batch again",
                sink.name,
            )
            return 0
        return len(wanted)

    async def _due(
        self, sink: EventSink, now: datetime
    ) -> tuple[DeliveryCursor, list[EventRow]] | None:
        """The cursor and its next batch, if one is due now."""
        cursor = await self.store.cursor(sink.name)
        if cursor.next_try_at is not None and now < cursor.next_try_at:
            return None
        read = await self.store.read_events(after=cursor.last_id, limit=sink.batch)
        return (cursor, read) if read else None

    async def _save(self, cursor: DeliveryCursor, error: str | None = None) -> bool:
        return await self.store.save_cursor(cursor, error, holder=self.holder)

    async def run(self, sink: EventSink, stop: asyncio.Event) -> None:
        """Ship to ``sink`` until ``stop``; a batch goes as soon as the last one
        was taken, else the next look is ``every`` later."""
        while not stop.is_set():
            try:
                taken = await self.ship(sink)
            except WarmupError:
                logger.exception("shipping events to %s failed", sink.name)
                taken = 0
            if taken:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every.total_seconds())
        if self.holder:  # another node takes over at once, not when it lapses
            with contextlib.suppress(WarmupError):
                await self.store.release_cursor(sink.name, self.holder)
