"""A store fault while a tick is recorded (issue 12, item 7): the record is
written again until the database is back, so no send is left ``sending`` and a
restart repeats none of them; the outage logs one line, not a traceback a try.

The fault is real: the ``attempts`` table is renamed away under the running
engine (SQLite file and PostgreSQL alike), then renamed back."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, select, text

from tests.app.test_dispatcher import START, _engine, _queue, _run_until
from warmup.adapters.db.schema import attempts, recipients
from warmup.adapters.db.store import SQLStore
from warmup.adapters.metrics import MetricsExporter
from warmup.app.runner import run_until_stopped
from warmup.core.attempt import SendOutcome
from warmup.core.errors import StoreError
from warmup.core.settings import SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeSender

WINDOW = START + timedelta(hours=1)  # 01:00 in Tokyo, the schedule's window


async def _rename(store: SQLStore, old: str, new: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


@dataclass(kw_only=True)
class _BreakingSender(FakeSender):
    """Sends as FakeSender; the first send takes the attempts table away."""

    store: SQLStore
    broken: list[bool] = field(default_factory=list)

    async def send(self, *, source: SourceIP, **kwargs: object) -> SendOutcome:
        if not self.broken:
            self.broken.append(True)
            await _rename(self.store, "attempts", "attempts_away")
        return await super().send(source=source, **kwargs)  # type: ignore[arg-type]


async def _states(store: SQLStore) -> dict[str, int]:
    async with store.engine.connect() as conn:
        query = select(recipients.c.state, func.count()).group_by(recipients.c.state)
        return {str(row[0]): int(row[1]) for row in (await conn.execute(query)).all()}


async def _attempt_count(store: SQLStore) -> int:
    async with store.engine.connect() as conn:
        query = select(func.count()).select_from(attempts)
        return int((await conn.execute(query)).scalar_one())


async def test_a_record_that_fails_is_retried_until_stored(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START)
    await _queue(store, 40, clock.now())
    sender = _BreakingSender(now=clock.now, store=store)
    engine = await _engine(store, clock, sender)
    await _run_until(engine, clock, WINDOW)  # maintenance done, nothing sent yet
    assert sender.sent == []
    clock.advance(WINDOW - clock.now())
    caplog.set_level(logging.INFO)
    tick = asyncio.create_task(engine.tick())
    for _ in range(1_000_000):  # bounded: each retry waits on the database only
        if engine.stats.record_failures >= 10 or tick.done():
            break
        await asyncio.sleep(0)
    assert not tick.done(), "the tick gave up on its record"
    assert engine.stats.record_failures >= 10
    held = len(sender.sent)
    assert held == 2  # one a lane, both lanes sent before the record failed
    await _rename(store, "attempts_away", "attempts")
    await tick
    # Backoff of 1, 2, 4 … s, at most 30 s, on the injected clock.
    failures = engine.stats.record_failures
    waited = sum(min(2**n, 30) for n in range(failures))
    assert clock.now() - WINDOW == timedelta(seconds=waited)
    # The sends are stored as done; the rest still "sending" is the lanes'
    # claimed buffers, handed back on finish().
    assert (await _states(store))["delivered"] == held
    assert await _attempt_count(store) == held
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 + failures // 10  # a reminder every ten tries
    assert all(r.exc_info is None for r in errors)
    assert "still cannot record the tick (10 tries)" in errors[1].getMessage()
    assert "database error during recording attempts" in errors[0].getMessage()
    assert "retrying until the database is back (2 sends held)" in (
        errors[0].getMessage()
    )
    assert any("tick recorded after" in r.getMessage() for r in caplog.records)
    exporter = MetricsExporter(store, clock)
    exporter.count_store_failures(lambda: engine.stats.record_failures)
    scraped = generate_latest(exporter.registry).decode()
    assert f"warmup_store_failures_total {float(failures)}" in scraped

    # A restart (a new engine, same node) repeats none of the recorded sends.
    await engine.finish()
    assert "sending" not in await _states(store)
    again = await _engine(store, clock, sender)
    await _run_until(again, clock, WINDOW + timedelta(hours=2))
    per_recipient = Counter(m.recipient for m in sender.sent)
    assert len(sender.sent) > held
    assert max(per_recipient.values()) == 1


async def test_a_lane_that_cannot_claim_logs_a_line_a_minute(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(WINDOW - timedelta(minutes=30))  # maintenance due after 30 min
    await _queue(store, 40, clock.now())
    sender = FakeSender(now=clock.now)
    # The heartbeat fails too (it frees lapsed claims in ``recipients``): a
    # lease long enough that the IPs stay provably ours through the outage.
    engine = await _engine(store, clock, sender, ip_lease=timedelta(hours=1))
    await _run_until(engine, clock, WINDOW)  # lanes made, nothing claimed yet
    await _rename(store, "recipients", "recipients_away")
    caplog.set_level(logging.WARNING)
    for _ in range(5):  # 0, 20, 40, 60, 80 s into the window
        clock.advance(max(WINDOW - clock.now(), timedelta(seconds=20)))
        await engine.tick()
    assert engine.stats.lane_failures == 10  # both lanes, every tick
    lines = [r for r in caplog.records if r.name == "warmup.app.dispatcher"]
    assert len(lines) == 2  # at 0 s and at 60 s
    assert all(r.exc_info is None for r in lines)
    assert "database error during claiming recipients" in lines[0].getMessage()
    assert sender.sent == []
    await _rename(store, "recipients_away", "recipients")
    clock.advance(timedelta(minutes=10))
    await engine.tick()
    assert len(sender.sent) == 2  # both lanes send again


async def test_a_tick_that_fails_on_the_store_is_one_line_in_the_runner(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START)
    await _queue(store, 4, clock.now())
    engine = await _engine(store, clock, FakeSender(now=clock.now))
    await _rename(store, "recipients", "recipients_away")  # maintenance fails
    caplog.set_level(logging.WARNING)
    stop, wake = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(
        run_until_stopped(engine, stop, wake, failure_pause=timedelta(0))
    )
    for _ in range(100_000):  # bounded: until the runner has seen two failures
        if sum("tick failed" in r.getMessage() for r in caplog.records) >= 2:
            break
        clock.advance(timedelta(seconds=1))  # a failed maintenance waits 10 s
        await asyncio.sleep(0)
    await _rename(store, "recipients_away", "recipients")  # finish() needs it
    stop.set()
    await runner
    failed = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert len(failed) >= 2
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in failed)
    assert all(
        "database error during expiring past deadlines" in r.getMessage()
        for r in failed
    )
    # The heartbeat fails at every tick too: one line for the whole outage (and
    # one when the store is back, before finish()).
    beats = [r for r in caplog.records if r.name == "warmup.app.ownership"]
    assert all(r.exc_info is None for r in beats)
    assert [r.getMessage().split(":")[0] for r in beats] == [
        "cannot renew the IP leases",
        f"IP leases renewed again (the store was away since {START.isoformat()[:13]}",
    ]
    assert "not sending from any IP until the store answers" in beats[0].getMessage()


async def test_a_node_that_cannot_renew_its_ip_leases_stops_when_they_run_out(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The heartbeat table away, the rest of the store fine: the node sends on
    only while its last heartbeat holds (another node may take its IPs after),
    then stops with its claims handed back, and starts again once a beat works."""
    lease = timedelta(minutes=25)
    clock = FakeClock(WINDOW)
    await _queue(store, 40, clock.now())
    sender = FakeSender(now=clock.now)
    engine = await _engine(store, clock, sender, ip_lease=lease)
    await engine.tick()  # beats, makes the lanes, each sends once
    assert len(sender.sent) == 2
    await _rename(store, "nodes", "nodes_away")
    caplog.set_level(logging.INFO)
    await _run_until(engine, clock, WINDOW + timedelta(hours=2))
    assert [m.at - WINDOW for m in sender.sent] == [
        timedelta(minutes=m) for m in (0, 0, 10, 10, 20, 20)
    ]
    assert engine.lanes == {}
    assert "sending" not in await _states(store)  # the buffers went back
    lines = [r for r in caplog.records if r.name == "warmup.app.ownership"]
    assert all(r.exc_info is None for r in lines)
    assert len(lines) == 2
    assert "cannot renew the IP leases: database error" in lines[0].getMessage()
    until = (WINDOW + lease).isoformat()
    assert f"sending from them until {until} at most" in lines[0].getMessage()
    assert lines[1].getMessage() == (
        "IP leases of 127.0.0.2, 127.0.0.3 ran out while the store is away: "
        "stopped sending from them"
    )
    await _rename(store, "nodes_away", "nodes")
    await _run_until(engine, clock, clock.now() + timedelta(minutes=30))
    assert len(sender.sent) > 6
    assert {m.source for m in sender.sent[6:]} == {"127.0.0.2", "127.0.0.3"}


async def test_the_controls_poll_fails_as_a_store_error_not_a_traceback(
    store: SQLStore,
) -> None:
    """The operator controls are read every two seconds: a database error there
    is the StoreError the runner logs as one line, like every other read."""
    clock = FakeClock(WINDOW)
    await _queue(store, 4, clock.now())
    engine = await _engine(store, clock, FakeSender(now=clock.now))
    await engine.tick()
    await _rename(store, "controls", "controls_away")
    clock.advance(timedelta(seconds=5))
    with pytest.raises(StoreError, match="database error during reading the"):
        await engine.tick()
    await _rename(store, "controls_away", "controls")


async def test_a_failed_maintenance_is_tried_again_within_seconds(
    store: SQLStore,
) -> None:
    """Not a maintenance period (an hour here) later: lanes, routes and expiries
    would wait that long after a blip of the database."""
    clock = FakeClock(START)
    await _queue(store, 4, clock.now())
    engine = await _engine(store, clock, FakeSender(now=clock.now))
    # A table the heartbeat does not touch: its beat succeeds, the maintenance not.
    await _rename(store, "campaign_suppressions", "away")
    with pytest.raises(StoreError, match="checking campaign unsubscribes"):
        await engine.tick()
    await _rename(store, "away", "campaign_suppressions")
    clock.advance(timedelta(seconds=10))
    await engine.tick()
    assert engine.lanes  # the maintenance ran again and made the lanes
