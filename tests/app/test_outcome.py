"""From a send's outcome to what follows (app/outcome.py), on a real store: the
attempt recorded, retry or suppression, and the lane's reaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import insert, select, update

from warmup.adapters.db.rows import DEADLINE_PASSED
from warmup.adapters.db.schema import attempts, recipients
from warmup.adapters.db.store import SQLStore
from warmup.app.lanes import LaneRuntime
from warmup.app.outcome import MX_TRIES, OutcomeHandler
from warmup.app.ports import MXAnswer, TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.attempt import Claimed, SendOutcome, TickRecord
from warmup.core.bounces.late import PendingLateReport
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.model import LaneState, RecipientState, SendStage, Verdict
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.recipients.routing import Hop
from warmup.core.replies.classify import ConnectionFailure, parse_reply
from warmup.core.settings import DeliverySettings, RetryPolicy, Route, SourceIP
from warmup.testing.fakes import FakeResolver

NOW = datetime(2030, 1, 1, 1, 30, tzinfo=UTC)  # inside the 01:00-03:00 window
SCHEDULE = Schedule(
    isp="gmail",
    domains=("gmail.com",),
    window=Window(start=time(1), end=time(3)),
    steps=(RampStep(first_day=1, last_day=9, per_hour=60),),
)


def _settings(**delivery: object) -> EngineSettings:
    return EngineSettings(
        schedules={"gmail": SCHEDULE},
        ips=(SourceIP(address="127.0.0.2", helo="a.test"),),
        delivery=DeliverySettings(**delivery),  # type: ignore[arg-type]
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=UTC,
        node="n",
    )


def _runtime() -> LaneRuntime:
    runtime = LaneRuntime(
        id=1,
        lane=Lane(ip="127.0.0.2", isp="gmail"),
        schedule=SCHEDULE,
        source=SourceIP(address="127.0.0.2", helo="a.test"),
        tz=UTC,
    )
    runtime.due_slot(NOW, TickRecord())  # opens the day
    return runtime


def _claimed(address: str = "ann@gmail.com", attempts: int = 0) -> Claimed:
    return Claimed(
        id=5,
        campaign_id=1,
        address=address,
        domain=address.rpartition("@")[2],
        fields={},
        attempts=attempts,
        queued_at=NOW - timedelta(hours=1),
    )


def _reply(text: str) -> SendOutcome:
    return SendOutcome(reply=parse_reply(text), stage=SendStage.rcpt)


@pytest.fixture
def handler(store: SQLStore) -> OutcomeHandler:
    return OutcomeHandler(store, _settings())


def test_a_250_is_delivered_and_only_counted_on_the_lane(
    handler: OutcomeHandler,
) -> None:
    runtime, record = _runtime(), TickRecord()
    before = runtime.lane
    handler.apply(runtime, _claimed(), _reply("250 2.0.0 OK"), NOW, record)
    (attempt,) = record.attempts
    assert (attempt.verdict, attempt.decision.state) == ("delivered", "delivered")
    assert attempt.attempts == 1 and attempt.reply == "250 2.0.0 OK"
    assert runtime.lane == replace(before, stats=DayStats(attempted=1, delivered=1))
    assert record.events == []
    assert record.suppressions == []
    assert runtime.window.counts(NOW).attempted == 1


def test_a_hard_bounce_suppresses_the_address_for_the_rest_of_the_run(
    handler: OutcomeHandler,
) -> None:
    runtime, record = _runtime(), TickRecord()
    bounce = _reply(
        "550 5.1.1 The email account that you tried to reach does not exist"
    )
    handler.apply(runtime, _claimed(), bounce, NOW, record)
    (attempt,) = record.attempts
    assert attempt.decision.state is RecipientState.bounced
    assert [s.address for s in record.suppressions] == ["ann@gmail.com"]
    later = TickRecord()
    assert handler.drop_if_suppressed(_claimed(), later)
    assert later.dropped == [5]
    assert not handler.drop_if_suppressed(_claimed("bob@gmail.com"), later)


def test_a_throttle_halves_the_lanes_rate_at_once(handler: OutcomeHandler) -> None:
    """ARCHITECTURE.md, "where does a throttle reply change the lane's rate"."""
    runtime, record = _runtime(), TickRecord()
    assert runtime.rate == 60
    throttle = _reply("421 4.7.28 Our system has detected an unusual rate")
    handler.apply(runtime, _claimed(attempts=2), throttle, NOW, record)
    (attempt,) = record.attempts
    assert attempt.verdict == "throttle"
    assert not attempt.decision.counts and attempt.decision.keep_lane
    assert attempt.attempts == 2  # the lane's trouble, not the recipient's
    assert runtime.lane.state is LaneState.backed_off
    assert runtime.rate == 30 and runtime.dirty
    assert [event.cause for _, event in record.events] == ["throttle"]


def test_a_block_pauses_the_lane_and_hands_its_mail_back(
    handler: OutcomeHandler,
) -> None:
    runtime, record = _runtime(), TickRecord()
    runtime.buffer.append(_claimed("bob@gmail.com"))
    runtime.lease_until = NOW + timedelta(hours=1)
    block = _reply("554 5.7.1 Client host [1.2.3.4] blocked using Spamhaus")
    handler.apply(runtime, _claimed(), block, NOW, record)
    assert runtime.lane.state is LaneState.paused
    assert record.released == [(5, NOW + timedelta(hours=1))]
    assert not runtime.buffer


def test_three_unreachable_connects_hold_the_lane(handler: OutcomeHandler) -> None:
    runtime, record = _runtime(), TickRecord()
    refused = SendOutcome(
        reply=None, failure=ConnectionFailure.refused, stage=SendStage.connect
    )
    for _ in range(3):
        handler.apply(runtime, _claimed(), refused, NOW, record)
    assert runtime.unreachable_until == NOW + timedelta(minutes=1)
    assert all(not a.decision.counts for a in record.attempts)
    assert record.events[-1][1].cause == "unreachable"


def test_a_late_hard_bounce_counts_on_the_lane(handler: OutcomeHandler) -> None:
    runtime, record = _runtime(), TickRecord()
    handler.apply(runtime, _claimed(), _reply("250 ok"), NOW, record)
    news = PendingLateReport(
        id=9, lane_id=1, ip="127.0.0.2", isp="gmail", verdict=Verdict.hard, reply="x"
    )
    handler.apply_late(runtime, news, NOW, record)
    stats = runtime.lane.stats
    assert (stats.attempted, stats.delivered, stats.hard) == (1, 0, 1)
    assert record.late_reports_applied == [9]


async def test_hops_are_the_route_else_the_first_mx_hosts(store: SQLStore) -> None:
    routed = OutcomeHandler(
        store, _settings(routes={"gmail": Route(host="127.0.0.1", port=2525)})
    )
    resolver = FakeResolver(
        {"x.test": MXAnswer(hosts=("a.x.test", "b.x.test", "c.x.test", "d.x.test"))}
    )
    assert await routed.hops(resolver, "gmail.com", "gmail") == [
        Hop(host="127.0.0.1", port=2525)
    ]
    plain = OutcomeHandler(store, _settings())
    hops = await plain.hops(resolver, "x.test", "default")
    assert [h.host for h in hops] == ["a.x.test", "b.x.test", "c.x.test"][:MX_TRIES]
    assert await plain.hops(resolver, "nowhere.test", "default") == []
    failure = plain.no_route("nowhere.test")
    assert failure.failure is ConnectionFailure.dns and "nowhere.test" in failure.detail


@pytest.mark.parametrize(("limit", "suppressed"), [(1, True), (3, False)])
async def test_an_address_expiring_again_and_again_is_suppressed(
    store: SQLStore, limit: int, suppressed: bool
) -> None:
    retry = replace(RetryPolicy(), suppress_after_expiries=limit)
    handler = OutcomeHandler(store, _settings(retry=retry))
    record = TickRecord()
    await handler.after_expiry(_claimed(), NOW, record)
    assert bool(record.suppressions) is suppressed
    if suppressed:
        assert record.suppressions[0].reason == "repeated_soft"


async def test_a_fresh_lane_rebuilds_an_empty_window_from_an_empty_store(
    handler: OutcomeHandler,
) -> None:
    runtime = _runtime()
    await handler.load_windows([runtime], NOW)
    assert runtime.window.counts(NOW).attempted == 0


async def test_expiries_our_lane_caused_never_count_toward_repeated_soft(
    store: SQLStore,
) -> None:
    """DESIGN: "suppressing good addresses for our own IP's sins is the classic
    bug". Of ann's four earlier expiries only one was her own (a soft reply): one
    came from a throttle, one from a connection failure, one from a deadline. So
    her next own expiry is the second in a row, not the fifth (it was: the store
    counted every expired row)."""
    template = TemplateRecord(name="t.eml", sha256="c" * 64, content=b"S: x\r\n\r\nx")
    row = parse_recipient_row({"email": "ann@gmail.com"}, set())
    last = {  # campaign: (its last attempt's verdict and rule, or none; last reply)
        "throttled": (("throttle", "gmail-rate"), "421 slow down"),
        "unreachable": (("soft", "connection-timeout"), "timed out"),
        "deadline": (None, DEADLINE_PASSED),
        "her own": (("soft", "mailbox-full"), "452 mailbox full"),
    }
    campaigns = {}
    for name in last:
        campaigns[name] = (await store.ensure_campaign(name, template, NOW)).id
        await store.insert_recipients(campaigns[name], [row], ["gmail"], NOW)
    async with store.engine.begin() as conn:
        for name, (attempt, reply) in last.items():
            query = select(recipients.c.id).where(
                recipients.c.campaign_id == campaigns[name]
            )
            (recipient_id,) = (await conn.execute(query)).scalars()
            await conn.execute(
                update(recipients)
                .where(recipients.c.id == recipient_id)
                .values(state="expired", updated_at=NOW, last_reply=reply)
            )
            if attempt is not None:
                verdict, rule = attempt
                await conn.execute(
                    insert(attempts).values(
                        recipient_id=recipient_id,
                        attempted_at=NOW,
                        verdict=verdict,
                        reason="x",
                        rule=rule,
                    )
                )
    assert await store.count_expired("ann@gmail.com") == 1
    later = NOW + timedelta(hours=1)
    for limit, suppressed in ((3, False), (2, True)):
        retry = replace(RetryPolicy(), suppress_after_expiries=limit)
        record = TickRecord()
        handler = OutcomeHandler(store, _settings(retry=retry))
        await handler.after_expiry(_claimed(), later, record)
        assert bool(record.suppressions) is suppressed
    # A delivery since starts a new row.
    delivered = await store.ensure_campaign("delivered", template, NOW)
    await store.insert_recipients(delivered.id, [row], ["gmail"], NOW)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(recipients)
            .where(recipients.c.campaign_id == delivered.id)
            .values(state="delivered", updated_at=NOW + timedelta(minutes=1))
        )
    assert await store.count_expired("ann@gmail.com") == 0
