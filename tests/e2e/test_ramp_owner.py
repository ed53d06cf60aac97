"""Never over the ramp (issue 17), on a virtual clock over real SMTP, on SQLite and
PostgreSQL: one owner per source IP whatever the config says, a stopped owner's
IP and claims taken over within a minute, and overflow that fills exactly what
the warming IP will not send, evenly, with the overflow IP on this node or another.

Each dispatcher is one process as `warmup run` builds it (its own store and
connections); they share one virtual clock and one sink on loopback.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from warmup.adapters.db.schema import lanes
from warmup.adapters.db.store import SQLStore
from warmup.adapters.smtp import SMTPSender
from warmup.app.dispatcher import Dispatcher
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import (
    DeliverySettings,
    Route,
    SourceIP,
    Timeouts,
    TLSSettings,
)
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver
from warmup.testing.smtp import ScriptedSMTPServer

TEMPLATE = b"From: a@shop.example\r\nSubject: Hi\r\n\r\nHello {{ name }}\r\n"
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)
WARMING = SourceIP(address="127.0.0.2", helo="warming.test")
OVERFLOW = SourceIP(address="127.0.0.9", helo="warm.test", overflow=("gmail",))
BEAT = timedelta(seconds=10)  # a third of the default ip_lease (30 s)


class Sink:
    """Accepted messages with the virtual instant they arrived and the peer IP."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.got: list[tuple[datetime, str, str]] = []

    def reply(self, peer: str, command: str, arg: str) -> str | None:
        if command == "DATA":
            self.got.append((self.clock.now(), peer, arg))
        return None

    def per_minute(self, ip: str, start: datetime, end: datetime) -> list[int]:
        minutes = math.ceil((end - start) / timedelta(minutes=1))
        counts = [0] * minutes
        for at, peer, _ in self.got:
            if peer == ip and start <= at < end:
                counts[int((at - start) / timedelta(minutes=1))] += 1
        return counts

    def max_in_any_minute(self) -> int:
        times = sorted(at for at, _, _ in self.got)
        return max(
            (
                sum(1 for t in times[i:] if t - start < timedelta(seconds=60))
                for i, start in enumerate(times)
            ),
            default=0,
        )


def _engine(
    store: SQLStore,
    clock: FakeClock,
    *,
    port: int,
    node: str,
    ips: Sequence[SourceIP],
    pool: Sequence[SourceIP],
    schedule: Schedule,
) -> Dispatcher:
    delivery = DeliverySettings(
        routes={"gmail": Route(host="127.0.0.1", port=port)},
        batch_size=50,
        timeouts=Timeouts(
            connect=timedelta(seconds=5),
            command=timedelta(seconds=5),
            data=timedelta(seconds=5),
        ),
        tls=TLSSettings(starttls="off"),
    )
    settings = EngineSettings(
        schedules={"gmail": schedule, "default": DEFAULT},
        ips=tuple(ips),
        pool=tuple(pool),
        delivery=delivery,
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=UTC,
        node=node,
    )
    sender = SMTPSender(timeouts=delivery.timeouts, tls=delivery.tls)
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=settings,
    )


@asynccontextmanager
async def _nodes(database_url: str, count: int) -> AsyncIterator[list[SQLStore]]:
    """One store (connection pool) per simulated process."""
    async with AsyncExitStack() as stack:
        stores = []
        for _ in range(count):
            store = await SQLStore.open(database_url)
            stack.push_async_callback(store.close)
            stores.append(store)
        yield stores


async def _queue(store: SQLStore, count: int, now: datetime) -> None:
    record = TemplateRecord(name="t.eml", sha256="d" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, now)
    rows = [
        parse_recipient_row({"email": f"u{i}@gmail.com", "name": "N"}, {"name"})
        for i in range(count)
    ]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * count, now)


async def _drive(
    engines: Sequence[Dispatcher], clock: FakeClock, until: datetime
) -> None:
    """Tick each engine when it wants to, at least every beat (as `warmup run`
    does, whose sleeps are at most a second)."""
    wakes = {id(e): clock.now() for e in engines}
    for _ in range(200_000):  # bounded: every step moves the clock forward
        now = clock.now()
        for engine in engines:
            if wakes[id(engine)] <= now:
                wake = await engine.tick()
                wakes[id(engine)] = min(wake, now + BEAT)
        step = min(wakes.values())
        if step >= until:
            clock.advance(max(until - now, timedelta(0)))
            return
        clock.advance(max(step - now, timedelta(microseconds=1)))
    raise AssertionError("the simulation did not reach its end")


async def _close(*engines: Dispatcher) -> None:
    for engine in engines:
        await engine.sender.close()


async def test_two_processes_on_one_ip_send_one_allowance_and_hand_over(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Same config, same IP, two processes: the sink sees one allowance, the lane's
    counters agree with the sink, the second says who owns the IP (once); when
    the owner stops beating the second takes the IP and the claims within a
    minute, and still one allowance goes out."""
    caplog.set_level(logging.INFO, logger="warmup.app.ownership")
    rate = 360  # one every 10 s; at most ceil(360/60)+1 = 7 in any 60 s
    schedule = Schedule(
        isp="gmail",
        window=Window(),
        steps=(RampStep(first_day=1, last_day=30, per_hour=rate),),
    )
    start = datetime(2030, 1, 2, 2, 0, tzinfo=UTC)
    clock = FakeClock(start)
    sink = Sink(clock)
    async with (
        ScriptedSMTPServer(reply_for=sink.reply) as server,
        _nodes(database_url, 2) as (store_a, store_b),
    ):
        await _queue(store_a, 600, start)
        first = _engine(
            store_a,
            clock,
            port=server.port,
            node="a:1",
            ips=[WARMING],
            pool=[WARMING],
            schedule=schedule,
        )
        second = _engine(
            store_b,
            clock,
            port=server.port,
            node="b:2",
            ips=[WARMING],
            pool=[WARMING],
            schedule=schedule,
        )
        try:
            await _drive([first, second], clock, start + timedelta(minutes=30))
            assert second.stats.sent == 0
            sent_by_first = len(sink.got)
            assert rate // 2 <= sent_by_first <= rate // 2 + 1  # 30 minutes
            waiting = [r for r in caplog.records if "is owned by a:1" in r.message]
            assert len(waiting) == 1  # said once, not every beat
            # The owner stops (SIGKILL: no finish, no more beats).
            killed_at = clock.now()
            await _drive([second], clock, killed_at + timedelta(minutes=30))
        finally:
            await _close(first, second)
        assert second.stats.sent > 0
        taken = min(at for at, _, _ in sink.got if at > killed_at)
        assert taken - killed_at <= timedelta(minutes=1)
        assert any(
            "took over IP 127.0.0.2 from a:1" in r.message for r in caplog.records
        )
        assert sink.max_in_any_minute() <= math.ceil(rate / 60) + 1
        assert len(sink.got) <= rate + 2  # one hour at one allowance (+ slot edges)
        recipients = Counter(arg for _, _, arg in sink.got)
        assert max(recipients.values()) == 1  # the first's claims were not resent
        async with store_b.engine.connect() as conn:
            (attempted,) = (
                (await conn.execute(select(lanes.c.day_attempted))).scalars().all()
            )
        assert attempted == len(sink.got)  # counters written by one process at a time
        owners = await store_b.ip_owners()
        assert [(o.ip, o.claimer) for o in owners] == [("127.0.0.2", "b:2")]


@pytest.mark.parametrize("layout", ["one node", "two nodes"])
async def test_overflow_fills_exactly_what_the_warming_ip_will_not_send(
    database_url: str, layout: str
) -> None:
    """Allowance R = 60 in a 6-minute window, 3R queued before it opens: the
    warming IP sends R, the overflow IP the other 2R spread evenly over the
    window, nothing is left, whether the overflow IP runs on the same node as
    the warming IP or on another (which reads the warming lane from the store)."""
    schedule = Schedule(
        isp="gmail",
        window=Window(start=time(1), end=time(1, 6)),
        steps=(RampStep(first_day=1, last_day=10, per_hour=600),),
        after_ramp=3600,
    )
    opens = datetime(2030, 1, 2, 1, 0, tzinfo=UTC)
    clock = FakeClock(opens - timedelta(minutes=2))
    sink = Sink(clock)
    pool = [WARMING, OVERFLOW]
    nodes = 1 if layout == "one node" else 2
    async with (
        ScriptedSMTPServer(reply_for=sink.reply) as server,
        _nodes(database_url, nodes) as stores,
    ):
        await _queue(stores[0], 180, clock.now())
        if nodes == 1:
            engines = [
                _engine(
                    stores[0],
                    clock,
                    port=server.port,
                    node="a:1",
                    ips=pool,
                    pool=pool,
                    schedule=schedule,
                )
            ]
        else:
            engines = [
                _engine(
                    stores[0],
                    clock,
                    port=server.port,
                    node="a:1",
                    ips=[WARMING],
                    pool=pool,
                    schedule=schedule,
                ),
                _engine(
                    stores[1],
                    clock,
                    port=server.port,
                    node="b:2",
                    ips=[OVERFLOW],
                    pool=pool,
                    schedule=schedule,
                ),
            ]
        try:
            await _drive(engines, clock, opens + timedelta(minutes=10))
        finally:
            await _close(*engines)
        by_ip = Counter(peer for _, peer, _ in sink.got)
        assert by_ip == {"127.0.0.2": 60, "127.0.0.9": 120}
        assert await stores[0].count_recipients() == {"delivered": 180}
        assert all(opens <= at < opens + timedelta(minutes=6) for at, _, _ in sink.got)
        window_end = opens + timedelta(minutes=6)
        overflow = sink.per_minute("127.0.0.9", opens, window_end)
        warming = sink.per_minute("127.0.0.2", opens, window_end)
        assert warming == [10] * 6
        # 2R over 6 minutes: 20 a minute, evenly (no burst, no gap).
        assert all(17 <= n <= 23 for n in overflow), overflow
        gaps = [
            b - a
            for a, b in itertools.pairwise(
                sorted(at for at, peer, _ in sink.got if peer == "127.0.0.9")
            )
        ]
        assert max(gaps) <= timedelta(seconds=6), max(gaps)


async def test_overflow_takes_up_what_a_throttled_warming_ip_gives_up(
    database_url: str,
) -> None:
    """A throttle halves the warming IP's rate for the rest of the window: the next
    plan sees it (from the store) and the overflow IP sends the difference, so
    everything but the throttled recipient (kept for its retry on the warming
    lane) goes out in the window."""
    schedule = Schedule(
        isp="gmail",
        window=Window(start=time(1), end=time(1, 6)),
        steps=(RampStep(first_day=1, last_day=10, per_hour=600),),
        after_ramp=3600,
    )
    opens = datetime(2030, 1, 2, 1, 0, tzinfo=UTC)
    clock = FakeClock(opens - timedelta(minutes=1))
    sink = Sink(clock)
    throttled: list[str] = []

    def reply(peer: str, command: str, arg: str) -> str | None:
        warming = sum(1 for _, ip, _ in sink.got if ip == WARMING.address)
        first = not throttled and warming == 10
        if first and command == "RCPT" and peer == WARMING.address:
            throttled.append(arg)
            return "421 4.7.28 Our system has detected an unusual rate of mail."
        return sink.reply(peer, command, arg)

    pool = [WARMING, OVERFLOW]
    async with (
        ScriptedSMTPServer(reply_for=reply) as server,
        _nodes(database_url, 1) as (store,),
    ):
        await _queue(store, 180, clock.now())
        engine = _engine(
            store,
            clock,
            port=server.port,
            node="a:1",
            ips=pool,
            pool=pool,
            schedule=schedule,
        )
        try:
            await _drive([engine], clock, opens + timedelta(minutes=10))
        finally:
            await _close(engine)
        by_ip = Counter(peer for _, peer, _ in sink.got)
        assert throttled
        assert by_ip[WARMING.address] < 45  # half rate after the throttle
        assert by_ip[WARMING.address] + by_ip[OVERFLOW.address] == 179
        assert await store.count_recipients() == {"delivered": 179, "queued": 1}
