"""The daemon's loop (app/runner.py) around a real dispatcher on a real store:
it ticks until stopped, a wake-up cuts its sleep short, a failing tick does not
end it, and a tick still in flight at stop gets its grace, then is cancelled.

Every wait is on an event, bounded by asyncio.timeout: no sleeping for time."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.app.runner import run_until_stopped
from warmup.app.settings import EngineSettings
from warmup.core.attempt import TickRecord
from warmup.core.errors import StoreError
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.settings import DeliverySettings, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender

BOUND = 10  # seconds: a hung loop fails the test instead of hanging the suite
SETTINGS = EngineSettings(
    schedules={
        "default": Schedule(
            isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
        )
    },
    ips=(SourceIP(address="127.0.0.2", helo="a.test"),),
    delivery=DeliverySettings(),
    return_path="bounces@bounce.test",
    verp_secret=b"k",
    tz=UTC,
    node="runner-test",
)


class _Watched(Dispatcher):
    """The real dispatcher, telling the test when each tick has finished, and
    able to fail a tick or hang one (the two things the loop must survive)."""

    def __init__(self, store: SQLStore, *, fail: int = 0, hang: bool = False) -> None:
        clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
        super().__init__(
            store=store,
            sender=FakeSender(now=clock.now),
            resolver=FakeResolver(),
            clock=clock,
            settings=SETTINGS,
        )
        self.ticked = asyncio.Condition()
        self.fail, self.hang = fail, hang
        self.cancelled = self.finished = False
        self.calls = 0

    async def tick(self) -> datetime:
        self.calls += 1
        try:
            if self.hang:
                await asyncio.Event().wait()
            if self.fail:
                self.fail -= 1
                raise StoreError("a tick", "database is away")
            return await super().tick()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            async with self.ticked:
                self.ticked.notify_all()

    async def finish(self) -> TickRecord:
        self.finished = True
        return await super().finish()

    async def ticks(self, count: int) -> None:
        async with self.ticked:
            await self.ticked.wait_for(lambda: self.calls >= count)


async def test_it_ticks_until_stopped_then_finishes(store: SQLStore) -> None:
    dispatcher = _Watched(store)
    stop, wake = asyncio.Event(), asyncio.Event()
    async with asyncio.timeout(BOUND):
        loop = asyncio.create_task(
            run_until_stopped(dispatcher, stop, wake, max_sleep=timedelta(0))
        )
        await dispatcher.ticks(3)
        stop.set()
        await loop
    assert dispatcher.stats.ticks >= 3 and dispatcher.finished


async def test_a_wake_cuts_the_sleep_short(store: SQLStore) -> None:
    """Nothing is due for a minute (the maintenance beat) and max_sleep allows an
    hour: only the wake-up makes the second tick happen now."""
    dispatcher = _Watched(store)
    stop, wake = asyncio.Event(), asyncio.Event()
    async with asyncio.timeout(BOUND):
        loop = asyncio.create_task(
            run_until_stopped(dispatcher, stop, wake, max_sleep=timedelta(hours=1))
        )
        await dispatcher.ticks(1)
        assert dispatcher.calls == 1
        while dispatcher.calls < 2:  # bounded by the timeout
            wake.set()  # (again: the loop clears it before it sleeps)
            await asyncio.sleep(0)
        await dispatcher.ticks(2)
        stop.set()
        await loop
    assert dispatcher.finished


async def test_a_failing_tick_is_logged_and_the_loop_goes_on(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = _Watched(store, fail=2)
    stop, wake = asyncio.Event(), asyncio.Event()
    async with asyncio.timeout(BOUND):
        loop = asyncio.create_task(
            run_until_stopped(dispatcher, stop, wake, failure_pause=timedelta(0))
        )
        await dispatcher.ticks(3)  # two failed, then a real one
        stop.set()
        await loop
    failures = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert len(failures) == 2 and dispatcher.stats.ticks >= 1
    assert dispatcher.finished


async def test_a_tick_in_flight_at_stop_is_cancelled_after_the_grace(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    dispatcher = _Watched(store, hang=True)
    stop, wake = asyncio.Event(), asyncio.Event()
    async with asyncio.timeout(BOUND):
        loop = asyncio.create_task(
            run_until_stopped(dispatcher, stop, wake, grace=timedelta(seconds=0.01))
        )
        await asyncio.sleep(0)  # the tick starts and hangs
        stop.set()
        await loop
    assert dispatcher.cancelled and dispatcher.finished
    assert "cancelling the sends still in flight" in caplog.text
