"""EngineSettings.burst: in real time a tick keeps a lane sending its due slots,
each at the clock's moment, until the burst's time is up; a stall never turns
into a burst. The clock is virtual: each send moves it as a real send would."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.attempt import Claimed, LaneClaim
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import DeliverySettings, Route, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender

S = TypeVar("S", bound=SQLStore)
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
    *,
    ips: int = 1,
    batch_size: int = 50,
) -> Dispatcher:
    record = TemplateRecord(name="t.eml", sha256="d" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, clock.now())
    rows = [parse_recipient_row({"email": f"u{i}@gmail.com"}, set()) for i in range(60)]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * 60, clock.now())
    settings = EngineSettings(
        schedules={"gmail": FAST, "default": DEFAULT},
        ips=tuple(
            SourceIP(address=f"127.0.0.{n}", helo=f"ip{n}.test")
            for n in range(2, 2 + ips)
        ),
        delivery=DeliverySettings(
            routes={"gmail": Route(host="127.0.0.1", port=2525)},
            batch_size=batch_size,
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


def _two_lanes(
    store: SQLStore, clock: FakeClock, sender: FakeSender
) -> Awaitable[Dispatcher]:
    """Two lanes bursting 5 sends a tick, claiming 8 at a time: after the first
    tick each holds 3, fewer than two bursts (a claim ahead is due)."""
    return _engine(
        store, clock, sender, burst=timedelta(seconds=60), burst_sends=5,
        ips=2, batch_size=8,
    )  # fmt: skip


@asynccontextmanager
async def _opened(kind: type[S], database_url: str) -> AsyncIterator[S]:
    """A store of the subclass ``kind`` on the test's database, closed after."""
    store = await kind.open(database_url)
    assert isinstance(store, kind)
    try:
        yield store
    finally:
        await store.close()


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


class _CountingStore(SQLStore):
    """The real store, noting how the engine claimed."""

    claim_calls: list[int]  # per claim call: how many lanes it served

    async def claim(self, **kwargs: Any) -> list[Claimed]:
        self.claim_calls.append(1)
        return await super().claim(**kwargs)

    async def claim_lanes(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]:
        self.claim_calls.append(len(requests))
        return await super().claim_lanes(requests, now=now, claimer=claimer)


async def test_bursting_lanes_that_may_run_dry_claim_together(
    database_url: str,
) -> None:
    """Lanes whose buffers may not last a burst top them up in one claim (one
    transaction, one wait for the writer lock) before they send, instead of
    each claiming on its own when it runs dry."""
    async with _opened(_CountingStore, database_url) as store:
        store.claim_calls = []
        clock = FakeClock(START)
        sender = _taking(clock, timedelta(seconds=0.1))
        engine = await _engine(
            store,
            clock,
            sender,
            burst=timedelta(seconds=60),
            burst_sends=5,
            ips=4,
            batch_size=8,
        )
        # The first tick plans each lane's day as it drives it: each claims
        # its first 8 on its own, then sends 5 of them.
        await engine.tick()
        assert store.claim_calls == [1, 1, 1, 1]
        assert len(sender.sent) == 20
        # 3 left each, less than a burst: all four top up in one claim (8, 8,
        # 8 and the last 4 of the 60) before they send 5 more each.
        await engine.tick()
        assert store.claim_calls == [1, 1, 1, 1, 4]
        assert len(sender.sent) == 40
        assert (await store.count_recipients()).get("delivered") == 40
        assert len({m.recipient for m in sender.sent}) == 40  # none sent twice


class _GatedStore(SQLStore):
    """The real store, whose claims for several lanes wait for ``gate``."""

    gate: asyncio.Event

    async def claim_lanes(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]:
        await self.gate.wait()
        return await super().claim_lanes(requests, now=now, claimer=claimer)


async def test_lanes_send_while_their_claim_ahead_runs(database_url: str) -> None:
    """The claim ahead runs while the lanes send what they hold (the store
    works on its own thread); only a lane that runs dry waits for it. Here the
    claim may finish only once the lanes have sent what they held: were the
    sends to wait for it, the tick would never end."""
    async with _opened(_GatedStore, database_url) as store:
        store.gate = asyncio.Event()
        store.gate.set()
        clock = FakeClock(START)
        held = 0

        def reply(_ip: str, _recipient: str) -> str:
            nonlocal held
            clock.advance(timedelta(seconds=0.1))
            held -= 1
            if held == 0:  # both lanes sent what they held: let the claim end
                store.gate.set()
            return "250 2.0.0 OK"

        sender = FakeSender(now=clock.now, reply_for=reply)
        engine = await _two_lanes(store, clock, sender)
        await engine.tick()  # each lane claims 8 on its own and sends 5
        assert len(sender.sent) == 10
        # 3 left each, less than two bursts: one claim ahead for both, held
        # at the gate until the 6 they hold are sent.
        store.gate.clear()
        held = 6
        async with asyncio.timeout(30):  # a hang is the failure, not a wait
            await engine.tick()
        assert len(sender.sent) == 20
        counts = await store.count_recipients()
        assert counts.get("delivered") == 20
        assert counts.get("sending") == 2 * (3 + 8 - 5)  # the rest, in the buffers
        assert len({m.recipient for m in sender.sent}) == 20  # none sent twice


async def test_a_buffer_of_two_claims_goes_back_under_each_lease(
    store: SQLStore,
) -> None:
    """A lane tops its buffer up before it runs dry, so the buffer may hold two
    claims with two leases; a pause hands both back to the queue."""
    clock = FakeClock(START)
    block = "554 5.7.1 Client host [127.0.0.2] blocked using Spamhaus"
    replies = iter(["250 2.0.0 OK"] * 5 + [block])

    def reply(_ip: str, _recipient: str) -> str:
        clock.advance(timedelta(seconds=0.1))
        return next(replies)

    sender = FakeSender(now=clock.now, reply_for=reply)
    engine = await _engine(
        store, clock, sender, burst=timedelta(seconds=60), burst_sends=5, batch_size=7
    )
    await engine.tick()  # claims 7, sends 5: 2 left, less than a burst
    clock.advance(timedelta(seconds=1))
    await engine.tick()  # tops up with 7 more (another lease), then the block
    assert len(sender.sent) == 6
    counts = await store.count_recipients()
    # 5 delivered, 1 blocked (back in the queue to retry), the other 8 claimed
    # (1 of the first claim, 7 of the second) handed back: none left claimed.
    assert counts.get("delivered") == 5
    assert counts.get("sending", 0) == 0
    assert counts.get("queued") == 55


async def test_a_failed_claim_ahead_is_a_logged_line_and_the_tick_goes_on(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The database away while the lanes claim ahead: the tick must not fail
    (what it already holds, late reports applied say, would be lost and done
    again); each lane then tries on its own, under its own guard."""
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _engine(
        store, clock, sender, burst=timedelta(seconds=60), burst_sends=5, batch_size=5
    )
    await engine.tick()  # claims 5, sends 5: the buffer is empty
    assert len(sender.sent) == 5
    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE recipients RENAME TO recipients_away"))
    caplog.set_level(logging.WARNING)
    try:
        await engine.tick()  # no exception out of the tick
        assert len(sender.sent) == 5
        assert engine.stats.lane_failures == 1  # the lane's own claim failed too
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1  # one line a minute, not one per failure
        assert lines[0].startswith("claiming ahead failed this tick: ")
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE recipients_away RENAME TO recipients"))
    clock.advance(timedelta(minutes=2))
    await engine.tick()
    assert len(sender.sent) == 10  # sending again


async def test_a_lane_that_runs_dry_again_after_its_claim_ahead_claims_on_its_own(
    store: SQLStore,
) -> None:
    """The claim ahead is waited for once; a lane that empties its buffer again
    in the same tick (claims smaller than a burst) claims on its own, as rule 1
    says, rather than going idle with mail in the queue."""
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _engine(
        store, clock, sender, burst=timedelta(seconds=60), burst_sends=5, batch_size=2
    )
    for tick in range(1, 5):
        await engine.tick()
        clock.advance(timedelta(seconds=1))
        assert len(sender.sent) == 5 * tick
    assert (await store.count_recipients()).get("delivered") == 20


class _BrokenAheadStore(SQLStore):
    """The real store, whose claim for several lanes fails with a bug once."""

    broken: bool

    async def claim_lanes(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]:
        if self.broken:
            self.broken = False
            raise RuntimeError("a bug in the claim")
        return await super().claim_lanes(requests, now=now, claimer=claimer)


async def test_a_bug_in_the_claim_ahead_does_not_lose_the_ticks_sends(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a store error but a bug: the claim ahead runs while the lanes send,
    so failing the tick would leave its sends unrecorded (and send them again).
    It is logged; the lanes claim on their own and the record is written."""
    async with _opened(_BrokenAheadStore, database_url) as store:
        store.broken = False
        clock = FakeClock(START)
        sender = _taking(clock, timedelta(seconds=0.1))
        engine = await _two_lanes(store, clock, sender)
        await engine.tick()  # each lane claims 8 on its own, sends 5
        store.broken = True
        caplog.set_level(logging.ERROR)
        await engine.tick()  # the claim ahead fails: 3 each, then their own claims
        assert len(sender.sent) == 20
        counts = await store.count_recipients()
        assert counts.get("delivered") == 20  # every send of the tick recorded
        assert [r.getMessage() for r in caplog.records] == [
            "claiming ahead failed this tick"
        ]
        assert len({m.recipient for m in sender.sent}) == 20  # none sent twice


async def test_a_tick_cancelled_in_its_sends_has_them_written_at_finish(
    database_url: str,
) -> None:
    """Shutdown cancels a tick that does not end (here its lanes wait for a
    claim ahead that never comes): what the tick sent is written by finish(),
    not released to the queue and sent again."""
    async with _opened(_GatedStore, database_url) as store:
        store.gate = asyncio.Event()
        store.gate.set()
        clock = FakeClock(START)
        sender = _taking(clock, timedelta(seconds=0.1))
        engine = await _two_lanes(store, clock, sender)
        await engine.tick()  # each lane claims 8 on its own and sends 5
        store.gate.clear()  # the next claim ahead never ends
        tick = asyncio.ensure_future(engine.tick())
        for _ in range(10_000):  # bounded: the 6 held sends, then the lanes wait
            if len(sender.sent) == 16:
                break
            await asyncio.sleep(0)  # a turn of the loop, no time passes
        assert len(sender.sent) == 16 and not tick.done()
        tick.cancel()
        with pytest.raises(asyncio.CancelledError):
            await tick
        async with asyncio.timeout(30):  # a hang is the failure, not a wait
            await engine.finish()
        counts = await store.count_recipients()
        assert counts.get("delivered") == 16  # the cancelled tick's 6 included
        assert counts.get("sending", 0) == 0
        assert counts.get("queued") == 60 - 16


async def test_claimed_mail_whose_suppression_check_failed_goes_back_at_once(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim is written, then the suppression look-up fails (the database
    away): what was claimed is handed back with the tick's record, not left
    leased to this node, unsendable, until its lease runs out."""
    clock = FakeClock(START)
    sender = _taking(clock, timedelta(seconds=0.1))
    engine = await _two_lanes(store, clock, sender)
    await engine.tick()  # each lane claims 8 on its own and sends 5
    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE suppressions RENAME TO away"))
    caplog.set_level(logging.WARNING)
    try:
        # The claim ahead and then each lane's own claim fail at the look-up.
        await engine.tick()
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE away RENAME TO suppressions"))
    assert len(sender.sent) == 16  # the 3 each held, then nothing
    counts = await store.count_recipients()
    assert counts.get("delivered") == 16
    assert counts.get("sending", 0) == 0  # nothing left claimed
    assert counts.get("queued") == 60 - 16
    clock.advance(timedelta(minutes=2))
    await engine.tick()
    assert len(sender.sent) == 26  # sending again, none twice
    assert len({m.recipient for m in sender.sent}) == 26
