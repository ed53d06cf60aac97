"""The dispatcher on a virtual clock, a real SQLite/PostgreSQL store and fake SMTP."""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from warmup.adapters.db.schema import recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.app.ports import MXAnswer, TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.schedule import (
    RampStep,
    Reactions,
    Schedule,
    ThrottleReaction,
    Window,
)
from warmup.core.model import LaneState
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import DeliverySettings, Route, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender, SentMessage

TZ = ZoneInfo("Asia/Tokyo")
START = datetime(2030, 1, 1, 0, 0, tzinfo=TZ).astimezone(UTC)
TEMPLATE = b"From: a@shop.example\r\nSubject: Hi {{ name }}\r\n\r\nHello {{ name }}\r\n"
SCHEDULE = Schedule(
    isp="gmail",
    domains=("gmail.com",),
    window=Window(start=time(1), end=time(3)),  # 2 h
    steps=(
        RampStep(first_day=1, last_day=2, per_hour=6),
        RampStep(first_day=3, last_day=4, per_hour=12),
        RampStep(first_day=5, last_day=6, per_hour=30),
    ),
)
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)
IPS = (
    SourceIP(address="127.0.0.2", helo="a.test"),
    SourceIP(address="127.0.0.3", helo="b.test"),
)


async def _engine(
    store: SQLStore,
    clock: FakeClock,
    sender: FakeSender,
    schedule: Schedule = SCHEDULE,
    resolver: FakeResolver | None = None,
    ip_lease: timedelta = timedelta(seconds=30),
) -> Dispatcher:
    """The engine; with a ``resolver`` it delivers by MX instead of a route."""
    routes = (
        {} if resolver is not None else {"gmail": Route(host="127.0.0.1", port=2525)}
    )
    settings = EngineSettings(
        schedules={"gmail": schedule, "default": DEFAULT},
        ips=IPS,
        delivery=DeliverySettings(routes=routes, batch_size=20, ip_lease=ip_lease),
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=TZ,
        node="test-node",
        maintenance_every=timedelta(hours=1),
        idle_wake=timedelta(hours=1),
    )
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=resolver if resolver is not None else FakeResolver(),
        clock=clock,
        settings=settings,
    )


async def _queue(store: SQLStore, count: int, now: datetime, prefix: str = "u") -> None:
    record = TemplateRecord(name="t.eml", sha256="c" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, now)
    rows = [
        parse_recipient_row(
            {"email": f"{prefix}{i}@gmail.com", "name": f"N{i}", "score": str(i % 7)},
            {"name"},
        )
        for i in range(count)
    ]
    await store.insert_recipients(campaign.id, rows, ["gmail"] * count, now)


async def _run_until(engine: Dispatcher, clock: FakeClock, end: datetime) -> None:
    for _ in range(200_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if wake >= end:
            break
        clock.advance(max(wake - clock.now(), timedelta(0)))
    else:  # pragma: no cover
        raise AssertionError("did not reach the end")


@pytest.mark.slow  # two ramp days, one send at a time (about 2 s)
async def test_each_day_sends_exactly_the_schedule_inside_the_window(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 2_000, clock.now())
    engine = await _engine(store, clock, sender)
    await _run_until(engine, clock, START + timedelta(days=6))
    per_day = Counter((m.source, m.at.astimezone(TZ).date()) for m in sender.sent)
    for ip in ("127.0.0.2", "127.0.0.3"):
        counts = [
            per_day[(ip, (START + timedelta(days=d)).astimezone(TZ).date())]
            for d in range(6)
        ]
        assert counts == [12, 12, 24, 24, 60, 60]
    for message in sender.sent:
        local = message.at.astimezone(TZ).time()
        assert time(1) <= local < time(3)
        assert message.host == "127.0.0.1" and message.port == 2525
    # Even pacing: never more than ceil(R/60)+1 in any 60 s, per IP.
    for ip in ("127.0.0.2", "127.0.0.3"):
        times = sorted(m.at for m in sender.sent if m.source == ip)
        gaps = {b - a for a, b in itertools.pairwise(times) if a.date() == b.date()}
        assert min(gaps) >= timedelta(seconds=120)
    assert len({m.recipient for m in sender.sent}) == len(sender.sent)  # no duplicates


async def test_engaged_recipients_go_first(store: SQLStore) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 100, clock.now())  # scores i % 7: fourteen 6s, fifteen 5s…
    engine = await _engine(store, clock, sender)
    await _run_until(engine, clock, START + timedelta(hours=4))

    def score(message: SentMessage) -> int:
        return int(message.recipient[1:].split("@")[0]) % 7

    assert len(sender.sent) == 24
    assert all(score(m) >= 5 for m in sender.sent)  # the 24 most engaged
    for ip in ("127.0.0.2", "127.0.0.3"):
        mine = [score(m) for m in sender.sent if m.source == ip]
        assert mine == sorted(mine, reverse=True)


async def test_a_throttle_halves_that_lane_at_once_and_recovers(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    throttled: set[str] = set()

    def reply(ip: str, rcpt: str) -> str:
        if (
            ip == "127.0.0.2"
            and len([m for m in sender.sent if m.source == ip]) == 5
            and not throttled
        ):
            throttled.add(rcpt)
            return (
                "421 4.7.28 [127.0.0.2] Our system has detected an unusual rate of "
                "unsolicited mail originating from your IP address."
            )
        return "250 2.0.0 OK"

    sender = FakeSender(now=clock.now, reply_for=reply)
    schedule = Schedule(
        isp="gmail",
        domains=("gmail.com",),
        window=Window(),
        steps=(RampStep(first_day=1, last_day=10, per_hour=60),),
        reactions=Reactions(throttle=ThrottleReaction(hold=timedelta(hours=1))),
    )
    await _queue(store, 500, clock.now())
    engine = await _engine(store, clock, sender, schedule)
    await _run_until(engine, clock, START + timedelta(hours=3))
    mine = [m.at for m in sender.sent if m.source == "127.0.0.2"]
    other = [m.at for m in sender.sent if m.source == "127.0.0.3"]
    gaps = [b - a for a, b in itertools.pairwise(mine)]
    assert gaps[:4] == [timedelta(minutes=1)] * 4
    assert gaps[4] == timedelta(minutes=2)  # the very next send is at half rate
    assert all(
        g == timedelta(minutes=1) for g in [b - a for a, b in itertools.pairwise(other)]
    )
    lane = engine.lanes[("127.0.0.2", "gmail")].lane
    assert lane.state is LaneState.ramping and lane.factor == 1.0  # recovered
    # the throttled recipient was retried on the same lane and delivered
    (victim,) = throttled
    assert [m.source for m in sender.sent if m.recipient == victim] == ["127.0.0.2"] * 2


async def test_overflow_ip_takes_only_what_warming_ips_cannot_send(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 300, clock.now())
    warm = SourceIP(address="127.0.0.9", helo="warm.test", overflow=("gmail",))
    settings = EngineSettings(
        schedules={"gmail": SCHEDULE, "default": DEFAULT},
        ips=(IPS[0], warm),
        delivery=DeliverySettings(
            routes={"gmail": Route(host="127.0.0.1", port=2525)}, batch_size=500
        ),
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=TZ,
        node="n:1",
        maintenance_every=timedelta(hours=1),
        idle_wake=timedelta(hours=1),
    )
    engine = Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=settings,
    )
    await _run_until(engine, clock, START + timedelta(hours=4))
    by_ip = Counter(m.source for m in sender.sent)
    # The warming IP sends its ramp (6/h x 2 h); the warmed overflow IP sends at the
    # schedule's warmed rate (30/h x 2 h) from the excess only.
    assert by_ip["127.0.0.2"] == 12
    assert by_ip["127.0.0.9"] == 60
    lane = engine.lanes[("127.0.0.9", "gmail")].lane
    assert lane.state is LaneState.warmed
    assert len({m.recipient for m in sender.sent}) == len(sender.sent)


async def test_no_overflow_pool_means_the_excess_waits(store: SQLStore) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 300, clock.now())
    engine = await _engine(store, clock, sender)
    await _run_until(engine, clock, START + timedelta(hours=4))
    assert len(sender.sent) == 24  # two warming IPs x 12; the rest stays queued
    assert (await store.count_recipients()).get("queued") == 276


async def test_a_buffer_past_its_lease_is_handed_back_unsent(store: SQLStore) -> None:
    clock = FakeClock(START + timedelta(hours=1))  # inside the 01:00-03:00 window
    sender = FakeSender(now=clock.now)
    await _queue(store, 100, clock.now())
    engine = await _engine(store, clock, sender)
    await engine.tick()
    runtime = engine.lanes[("127.0.0.2", "gmail")]
    held = {c.id for c in runtime.buffer}
    assert held  # claimed, not yet sent
    assert runtime.lease_until is not None
    expired = runtime.lease_until
    # The lane is next due only after its lease ran out (next day's window).
    clock.advance(timedelta(days=1))
    assert clock.now() > expired
    await engine.tick()
    assert runtime.lease_until > clock.now()
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(recipients.c.id, recipients.c.claimed_until).where(
                    recipients.c.id.in_([c.id for c in runtime.buffer])
                )
            )
        ).all()
    # Whatever the lane holds now is held under a fresh, unexpired lease.
    assert rows
    assert all(r.claimed_until > clock.now() for r in rows)
    assert len({m.recipient for m in sender.sent}) == len(sender.sent)


async def test_a_restart_between_days_still_advances_a_good_day(
    store: SQLStore,
) -> None:
    clock = FakeClock(START)
    await _queue(store, 500, clock.now())
    first = await _engine(store, clock, FakeSender(now=clock.now))
    await _run_until(first, clock, START + timedelta(hours=6))  # day 1 done
    await first.finish()
    # A new process (fresh in-memory state) picks up the next morning.
    second = await _engine(store, clock, FakeSender(now=clock.now))
    await _run_until(second, clock, START + timedelta(days=1, hours=2))
    events = [(e["ip"], e["cause"]) for e in await store.all_events()]
    assert ("127.0.0.2", "advance") in events
    assert ("127.0.0.2", "repeat") not in events
    assert second.lanes[("127.0.0.2", "gmail")].lane.ramp_day == 2


async def test_one_failing_lane_does_not_stop_the_others(store: SQLStore) -> None:
    clock = FakeClock(START + timedelta(hours=1))

    def reply(ip: str, _rcpt: str) -> str:
        if ip == "127.0.0.2":
            raise RuntimeError("simulated adapter bug")
        return "250 2.0.0 OK"

    sender = FakeSender(now=clock.now, reply_for=reply)
    await _queue(store, 100, clock.now())
    engine = await _engine(store, clock, sender)
    await engine.tick()  # must not raise
    counts = await store.count_recipients()
    assert counts.get("delivered") == 1  # 127.0.0.3 sent and it was recorded
    assert engine.lanes[("127.0.0.2", "gmail")].buffer == deque()


async def test_expired_leases_unpin_recipients_from_their_lane(store: SQLStore) -> None:
    clock = FakeClock(START)
    await _queue(store, 10, clock.now())
    dead, _ = await store.ensure_lane(Lane(ip="127.0.0.2", isp="gmail"), clock.now())
    alive, _ = await store.ensure_lane(Lane(ip="127.0.0.3", isp="gmail"), clock.now())
    claimed = await store.claim(
        lane_id=dead,
        isp="gmail",
        limit=5,
        now=clock.now(),
        claimer="dead:1",
        lease_until=clock.now(),
    )
    assert len(claimed) == 5
    assert await store.release_expired_leases(clock.now() + timedelta(seconds=1)) == 5
    again = await store.claim(
        lane_id=alive,
        isp="gmail",
        limit=10,
        now=clock.now(),
        claimer="alive:1",
        lease_until=clock.now(),
    )
    assert len(again) == 10  # another lane can take them


async def test_poke_makes_new_mail_go_out_before_the_next_beat(
    store: SQLStore,
) -> None:
    """The relay pokes the dispatcher after a commit: mail queued for an ISP that
    had none is routed and sent on the next tick, not an hour later."""
    clock = FakeClock(START + timedelta(hours=1, minutes=5))  # inside the window
    sender = FakeSender(now=clock.now)
    engine = await _engine(store, clock, sender)
    await engine.tick()  # maintenance now: nothing queued, no lanes
    assert engine.lanes == {}
    await _queue(store, 2, clock.now())
    clock.advance(timedelta(seconds=1))
    await engine.tick()
    assert sender.sent == []  # maintenance is an hour away, the heartbeat 9 s
    engine.poke()
    clock.advance(timedelta(seconds=1))
    await engine.tick()
    assert len(sender.sent) == 1


async def test_an_unreachable_mx_falls_back_to_the_next(store: SQLStore) -> None:
    """No route configured: MX hosts by preference; one that refuses the connection
    is skipped for the next, and the send counts once, as delivered."""
    clock = FakeClock(START + timedelta(hours=1, minutes=5))  # inside the window
    sender = FakeSender(now=clock.now, unreachable={"mx1.gmail.test"})
    resolver = FakeResolver(
        {"gmail.com": MXAnswer(hosts=("mx1.gmail.test", "mx2.gmail.test"))}
    )
    engine = await _engine(store, clock, sender, resolver=resolver)
    await _queue(store, 1, clock.now())
    await engine.tick()
    assert [(m.host, m.port) for m in sender.sent] == [("mx2.gmail.test", 25)]
    async with store.engine.connect() as conn:
        (state,) = (await conn.execute(select(recipients.c.state))).scalars().all()
    assert state == "delivered"
    # Every MX unreachable: one connection failure, retried later, no bounce.
    sender.unreachable.add("mx2.gmail.test")
    await _queue(store, 1, clock.now(), prefix="v")
    clock.advance(timedelta(minutes=30))
    await engine.tick()
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(recipients.c.state))).scalars().all()
    assert sorted(rows) == ["delivered", "queued"]


async def test_a_lane_whose_isp_is_unreachable_holds_then_resumes(
    store: SQLStore,
) -> None:
    """Sends that reach no host hold the lane (1, 2, 4 … min after the third in a
    row) instead of each waiting out a connect timeout at the full rate; the
    first send that gets a reply ends the hold."""
    fast = Schedule(
        isp="gmail",
        domains=("gmail.com",),
        steps=(RampStep(first_day=1, last_day=30, per_hour=600),),  # every 6 s
    )
    clock = FakeClock(START + timedelta(hours=2))
    sender = FakeSender(now=clock.now, unreachable={"127.0.0.1"})
    await _queue(store, 50, clock.now())
    engine = await _engine(store, clock, sender, schedule=fast)
    await _run_until(engine, clock, clock.now() + timedelta(minutes=10))
    # Per lane: 3 failures in 12 s, then one after each hold of 1, 2 and 4 min.
    assert engine.stats.sent == 2 * 6
    assert sender.sent == []
    events = [e for e in await store.all_events() if e["cause"] == "unreachable"]
    assert len(events) == 2 * 4
    assert "holding until" in (events[0]["detail"] or "")
    sender.unreachable.clear()
    await _run_until(engine, clock, clock.now() + timedelta(minutes=10))
    # After the 8-min hold each lane delivers again at its full rate.
    assert len(sender.sent) >= 2 * 20
    async with store.engine.connect() as conn:
        states = (await conn.execute(select(recipients.c.state))).scalars().all()
    assert "bounced" not in states and "expired" not in states


async def test_rolling_hard_bounce_rate_steps_back_once_per_window(
    store: SQLStore,
) -> None:
    """Rule 7 live: every 100 attempts with over 5 % hard bounces step the lane back
    (not only at day close), each reaction starting a fresh window, and a restart
    rebuilds the window after the last reaction instead of reacting again."""
    fast = Schedule(
        isp="gmail",
        domains=("gmail.com",),
        steps=(
            RampStep(first_day=1, last_day=1, per_hour=300),
            RampStep(first_day=2, last_day=30, per_hour=600),
        ),
    )
    clock = FakeClock(START + timedelta(hours=2))
    dead = {f"u{i}@gmail.com" for i in range(0, 600, 10)}  # 10 %

    def reply(_ip: str, rcpt: str) -> str:
        if rcpt in dead:
            return "550 5.1.1 The email account that you tried to reach does not exist."
        return "250 2.0.0 OK"

    sender = FakeSender(now=clock.now, reply_for=reply)
    await _queue(store, 600, clock.now())
    engine = await _engine(store, clock, sender, schedule=fast)
    await _run_until(engine, clock, clock.now() + timedelta(minutes=50))
    assert engine.stats.sent == 2 * 250  # 300/h per lane for 50 min
    steps = [e for e in await store.all_events() if e["cause"] == "step_back"]
    # ~250 attempts per lane with ~10 % hard: one reaction per 100 in a row.
    assert len(steps) == 2 * 2
    assert all("over the last 100 attempts" in (e["detail"] or "") for e in steps)
    # A restart: the window holds only what came after the last reaction.
    sender.reply_for = lambda _ip, _rcpt: "250 2.0.0 OK"
    again = await _engine(store, clock, sender, schedule=fast)
    await _run_until(again, clock, clock.now() + timedelta(minutes=10))
    assert len([e for e in await store.all_events() if e["cause"] == "step_back"]) == 4


async def test_mail_queued_by_another_process_is_seen_within_a_beat(
    store: SQLStore,
) -> None:
    """`warmup enqueue` runs in its own process and cannot poke the daemon: the
    heartbeat sees the queue grow and sends within seconds, not at the next
    maintenance (an hour away here)."""
    clock = FakeClock(START + timedelta(hours=1, minutes=5))  # inside the window
    sender = FakeSender(now=clock.now)
    engine = await _engine(store, clock, sender)
    await engine.tick()
    assert engine.lanes == {}
    await _queue(store, 2, clock.now())
    clock.advance(timedelta(seconds=10))  # one beat (ip_lease 30 s / 3)
    await engine.tick()
    assert len(sender.sent) == 1


async def test_an_isp_with_only_warm_ips_is_sent_at_their_full_rate(
    store: SQLStore,
) -> None:
    """Overflow is spread over the window to share it with warming IPs; with none
    for the ISP there is nothing to share: ten messages in an all-day window go
    out at the warm IP's rate (one a minute), not one every 2.4 hours."""
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    schedule = Schedule(
        isp="gmail",
        domains=("gmail.com",),
        steps=(RampStep(first_day=1, last_day=2, per_hour=6),),
        after_ramp=60,
    )
    warm = SourceIP(address="127.0.0.9", helo="warm.test", overflow=("gmail",))
    base = await _engine(store, clock, sender, schedule)
    engine = Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=replace(base.settings, ips=(warm,), pool=(warm,)),
    )
    await _queue(store, 10, clock.now())
    await _run_until(engine, clock, START + timedelta(minutes=15))
    assert len(sender.sent) == 10
    assert max(m.at for m in sender.sent) - START <= timedelta(minutes=10)


async def test_a_lane_is_asked_only_when_its_wake_up_has_come(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lanes at different rates tick at different instants; each tick drives
    only the lanes that are due (a tick's cost stays with what it sends, not
    with how many lanes there are), and every lane still keeps its pace."""
    from warmup.app.lanes import LaneRuntime

    clock = FakeClock(START + timedelta(hours=1))  # in the window
    sender = FakeSender(now=clock.now)
    fast = replace(SCHEDULE, steps=(RampStep(first_day=1, last_day=9, per_hour=30),))
    slow = replace(
        fast,
        isp="yahoo",
        domains=("yahoo.com",),
        steps=(replace(fast.steps[0], per_hour=7),),
    )
    await _queue(store, 100, clock.now())  # gmail
    record = TemplateRecord(name="t.eml", sha256="c" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, clock.now())
    rows = [
        parse_recipient_row({"email": f"y{i}@yahoo.com", "name": "Y"}, {"name"})
        for i in range(100)
    ]
    await store.insert_recipients(campaign.id, rows, ["yahoo"] * 100, clock.now())
    route = Route(host="127.0.0.1", port=2525)
    engine = Dispatcher(
        store=store,
        sender=sender,
        resolver=FakeResolver(),
        clock=clock,
        settings=EngineSettings(
            schedules={"gmail": fast, "yahoo": slow, "default": DEFAULT},
            ips=IPS[:1],
            delivery=DeliverySettings(
                routes={"gmail": route, "yahoo": route}, batch_size=20
            ),
            return_path="bounces@bounce.test",
            verp_secret=b"k",
            tz=TZ,
            node="test-node",
            maintenance_every=timedelta(hours=1),
            idle_wake=timedelta(hours=1),
        ),
    )
    asked: Counter[str] = Counter()
    real = LaneRuntime.due_slot

    def due_slot(self: LaneRuntime, now: datetime, record: object) -> object:
        asked[self.lane.isp] += 1
        return real(self, now, record)  # type: ignore[arg-type]

    monkeypatch.setattr(LaneRuntime, "due_slot", due_slot)
    await _run_until(engine, clock, START + timedelta(hours=2))
    for isp, per_hour in (("gmail", 30), ("yahoo", 7)):
        sent = sorted(m.at for m in sender.sent if m.recipient.endswith(isp + ".com"))
        assert len(sent) == per_hour  # the hour's allowance, evenly spaced
        gaps = {b - a for a, b in itertools.pairwise(sent)}
        assert min(gaps) >= timedelta(hours=1) / per_hour - timedelta(seconds=1)
    # The slow lane is asked at its own slots (and at the beats), not at each
    # of the fast lane's 30.
    assert asked["yahoo"] <= 2 * 7 + 6 < asked["gmail"]


async def test_a_lane_left_alone_still_recovers_on_time(store: SQLStore) -> None:
    """A backed-off lane with nothing to send before the window closes (its
    day used up) is not driven at the other lanes' ticks, yet its recovery
    step comes at the first tick after its instant, not at the window's end."""
    clock = FakeClock(START + timedelta(hours=1))  # the window opens
    sender = FakeSender(now=clock.now)
    schedule = replace(
        SCHEDULE, steps=(RampStep(first_day=1, last_day=9, per_hour=60),)
    )
    await _queue(store, 300, clock.now())
    engine = await _engine(store, clock, sender, schedule)
    await engine.tick()  # lanes made, each sent once
    runtime = engine.lanes[("127.0.0.2", "gmail")]
    recover_at = clock.now() + timedelta(minutes=20)
    runtime.lane = replace(
        runtime.lane,
        state=LaneState.backed_off,
        factor=0.5,
        hold_until=recover_at,
        recover_at=recover_at,
        stats=replace(runtime.lane.stats, attempted=runtime.planned),
    )
    runtime.dirty = True  # as a reaction leaves it
    await _run_until(engine, clock, recover_at + timedelta(minutes=10))
    assert runtime.lane.factor == 0.75  # one recovery step (core.lanes.lane rule 3)
    assert runtime.lane.recover_at is not None
    stepped = runtime.lane.recover_at - timedelta(hours=1)
    assert recover_at <= stepped <= recover_at + timedelta(minutes=1)
    # the other lane sent all along, once a minute
    other = [m.at for m in sender.sent if m.source == "127.0.0.3"]
    assert len(other) >= 30
