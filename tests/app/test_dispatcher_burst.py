"""EngineSettings.burst: in real time a tick keeps a lane sending its due slots,
each at the clock's moment, until the burst's time is up; a stall never turns
into a burst. The clock is virtual: each send moves it as a real send would."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import DeliverySettings, Route, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TEMPLATE = b"From: a@shop.example\r\nSubject: Hi\r\n\r\nHello\r\n"
FAST = Schedule(  # one slot every 0.1 s, all day
    isp="gmail",
    domains=("gmail.com",),
    steps=(RampStep(first_day=1, last_day=30, per_hour=36_000),),
)
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)


async def _engine(
    store: SQLStore,
    clock: FakeClock,
    sender: FakeSender,
    burst: timedelta,
    burst_sends: int = 100,
) -> Dispatcher:
    record = TemplateRecord(name="t.eml", sha256="d" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, clock.now())
    rows = [parse_recipient_row({"email": f"u{i}@gmail.com"}, set()) for i in range(60)]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * 60, clock.now())
    settings = EngineSettings(
        schedules={"gmail": FAST, "default": DEFAULT},
        ips=(SourceIP(address="127.0.0.2", helo="a.test"),),
        delivery=DeliverySettings(
            routes={"gmail": Route(host="127.0.0.1", port=2525)}, batch_size=50
        ),
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=UTC,
        node="test-node",
        burst=burst,
        burst_sends=burst_sends,
    )
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=settings,
    )


def _taking(clock: FakeClock, each: timedelta) -> FakeSender:
    """A sender whose every send takes ``each`` of the clock's time."""

    def reply(_ip: str, _recipient: str) -> str:
        clock.advance(each)
        return "250 2.0.0 OK"

    return FakeSender(now=clock.now, reply_for=reply)


async def test_a_burst_sends_every_due_slot_until_its_time_is_up(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _engine(store, clock, sender, burst=timedelta(seconds=1))
    await engine.tick()  # the first tick: maintenance, claims, then the burst
    sent = len(sender.sent)
    assert 9 <= sent <= 11  # 1 s of sends at 0.1 s each
    # Each send at its own moment, never closer than the lane's spacing.
    moments = [m.at for m in sender.sent]
    assert all(b - a >= timedelta(seconds=0.1) for a, b in itertools.pairwise(moments))
    # All of them recorded by the tick itself (one record for the burst).
    counts = await store.count_recipients()
    assert counts.get("delivered") == sent
    assert engine.stats.sent == sent and engine.stats.ticks == 1
    await engine.tick()
    assert 18 <= len(sender.sent) <= 22  # the next tick goes on at once


async def test_a_stall_never_turns_into_a_burst(store: SQLStore) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)  # sends take no time: nothing else falls due
    engine = await _engine(store, clock, sender, burst=timedelta(seconds=1))
    await engine.tick()
    assert len(sender.sent) == 1
    clock.advance(timedelta(seconds=30))  # 300 slots missed
    await engine.tick()
    assert len(sender.sent) == 2  # one send: the lane restarts from now
    clock.advance(timedelta(seconds=0.1))
    await engine.tick()
    assert len(sender.sent) == 3


async def test_without_a_burst_a_tick_sends_one_slot_per_lane(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _engine(store, clock, sender, burst=timedelta(0))
    await engine.tick()
    await engine.tick()
    assert len(sender.sent) == 2 and engine.stats.ticks == 2


async def test_a_burst_sends_no_more_than_its_count(store: SQLStore) -> None:
    """What a crash can repeat: at most burst_sends unrecorded sends per lane."""
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _engine(
        store, clock, sender, burst=timedelta(seconds=60), burst_sends=5
    )
    await engine.tick()
    assert len(sender.sent) == 5
    assert (await store.count_recipients()).get("delivered") == 5
