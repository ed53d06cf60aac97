"""DNS answers are evidence: the dispatcher against a real DNS server on loopback.

The resolver is the production one (dnspython) asking a ``ZoneServer`` on
127.0.0.1, whose zone each test edits and whose query log shows what was asked.
Time is a virtual clock; sends go to a recording sender.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from warmup.adapters.db.schema import recipients
from warmup.adapters.db.store import SQLStore
from warmup.adapters.dns import DNSResolver
from warmup.app.dispatcher import Dispatcher
from warmup.app.domains import recheck_dns_suppressions
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.recipients.suppression import make_suppression
from warmup.core.settings import DeliverySettings, DNSSettings, Route, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.dns import ZoneServer
from warmup.testing.fakes import FakeSender

START = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
DOMAIN = "shop.example"
MX: dict[str, Sequence[str]] = {"MX": ["10 mx.shop.example."]}
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=30, per_hour=60),)
)
TEMPLATE = b"From: a@sender.example\r\nSubject: Hi\r\n\r\nHello\r\n"


@pytest.fixture
async def dns_server() -> AsyncIterator[ZoneServer]:
    async with ZoneServer({}) as server:
        yield server


def _engine(
    store: SQLStore,
    clock: FakeClock,
    sender: FakeSender,
    server: ZoneServer,
    routes: dict[str, Route] | None = None,
    timeout: timedelta = timedelta(seconds=2),
) -> Dispatcher:
    resolver = DNSResolver(
        timeout=timeout, now=clock.now, nameservers=[server.host], port=server.port
    )
    settings = EngineSettings(
        schedules={"default": DEFAULT},
        ips=(SourceIP(address="127.0.0.2", helo="a.test"),),
        delivery=DeliverySettings(routes=routes or {}, batch_size=20),
        return_path="bounces@bounce.test",
        verp_secret=b"k",
        tz=UTC,
        node="test-node",
        maintenance_every=timedelta(minutes=5),
        idle_wake=timedelta(minutes=5),
        dns=DNSSettings(confirm_after=timedelta(hours=1)),
    )
    return Dispatcher(
        store=store,
        sender=sender,
        resolver=resolver,
        clock=clock,
        settings=settings,
    )


async def _queue(store: SQLStore, count: int, now: datetime) -> None:
    record = TemplateRecord(name="t.eml", sha256="d" * 64, content=TEMPLATE)
    campaign = await store.ensure_campaign("c", record, now)
    rows = [
        parse_recipient_row({"email": f"u{i}@{DOMAIN}"}, set()) for i in range(count)
    ]
    await store.insert_recipients(campaign.id, rows, [None] * count, now)


async def _run(engine: Dispatcher, clock: FakeClock, span: timedelta) -> None:
    end = clock.now() + span
    for _ in range(10_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if wake >= end:
            clock.advance(max(end - clock.now(), timedelta(0)))
            return
        clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
    raise AssertionError("did not reach the end")  # pragma: no cover


async def _states(store: SQLStore) -> list[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(recipients.c.state).order_by(recipients.c.id))
        return [str(state) for state in rows.scalars()]


async def _dns_suppressions(store: SQLStore) -> list[str]:
    return [e.address async for e in store.iter_suppressions(source="dns")]


def _asked(server: ZoneServer, name: str = DOMAIN) -> int:
    return sum(1 for asked, _ in server.queries if asked == name)


async def test_nxdomain_once_then_the_right_mx_defers_then_delivers(
    store: SQLStore, dns_server: ZoneServer
) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 3, clock.now())
    engine = _engine(store, clock, sender, dns_server)
    await engine.tick()
    assert _asked(dns_server) == 1
    assert await _states(store) == ["queued"] * 3  # deferred, not bounced
    assert await _dns_suppressions(store) == []
    assert sender.sent == []
    dns_server.zone[DOMAIN] = MX  # the domain's DNS is back
    await _run(engine, clock, timedelta(hours=2))
    assert await _dns_suppressions(store) == []
    assert await _states(store) == ["delivered"] * 3
    assert {m.host for m in sender.sent} == {"mx.shop.example"}
    # Nothing was sent before the retry the deferral set.
    assert min(m.at for m in sender.sent) >= START + timedelta(minutes=15)


async def test_nxdomain_for_over_an_hour_suppresses_the_domain(
    store: SQLStore, dns_server: ZoneServer
) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 3, clock.now())
    engine = _engine(store, clock, sender, dns_server)
    await _run(engine, clock, timedelta(minutes=59))
    assert await _dns_suppressions(store) == []
    assert await _states(store) == ["queued"] * 3
    await _run(engine, clock, timedelta(hours=1))
    assert await _dns_suppressions(store) == ["@" + DOMAIN]
    assert await _states(store) == ["bounced"] * 3
    assert _asked(dns_server) >= 2
    assert sender.sent == []


async def test_a_route_listed_domain_is_never_looked_up(
    store: SQLStore, dns_server: ZoneServer
) -> None:
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 2, clock.now())
    routes = {DOMAIN: Route(host="127.0.0.1", port=2525)}
    engine = _engine(store, clock, sender, dns_server, routes=routes)
    await _run(engine, clock, timedelta(hours=2))
    assert dns_server.queries == []  # the server's log: not one question
    assert await _states(store) == ["delivered"] * 2
    assert {(m.host, m.port) for m in sender.sent} == {("127.0.0.1", 2525)}


async def test_an_unreachable_nameserver_is_soft_for_ever(store: SQLStore) -> None:
    async with ZoneServer({}) as server:
        pass  # closed again: its port now answers nothing
    clock = FakeClock(START)
    sender = FakeSender(now=clock.now)
    await _queue(store, 1, clock.now())
    engine = _engine(store, clock, sender, server, timeout=timedelta(seconds=0.2))
    for _ in range(3):  # bounded: three beats, hours apart
        await engine.tick()
        clock.advance(timedelta(hours=2))
    assert await _dns_suppressions(store) == []
    assert await _states(store) == ["queued"]


async def test_the_recheck_job_lifts_domains_that_resolve_again(
    store: SQLStore, dns_server: ZoneServer
) -> None:
    now = START + timedelta(days=40)
    old, fresh = START, now - timedelta(days=10)
    entries = [
        make_suppression("@back.example", reason="hostunknown", source="dns", now=old),
        make_suppression("@gone.example", reason="hostunknown", source="dns", now=old),
        make_suppression("@new.example", reason="hostunknown", source="dns", now=fresh),
        make_suppression("@manual.example", reason="manual", source="cli", now=old),
    ]
    await store.add_suppressions(entries)
    dns_server.zone["back.example"] = MX
    dns_server.zone["new.example"] = MX
    resolver = DNSResolver(
        timeout=timedelta(seconds=2),
        now=lambda: now,
        nameservers=[dns_server.host],
        port=dns_server.port,
    )
    result = await recheck_dns_suppressions(
        store, resolver, now=now, recheck_after=timedelta(days=30), routes={}
    )
    assert result.lifted == ("@back.example",)
    assert result.kept == ("@gone.example",)
    assert await _dns_suppressions(store) == ["@gone.example", "@new.example"]
    assert {name for name, _ in dns_server.queries} == {"back.example", "gone.example"}


async def test_the_evidence_survives_a_restart(
    store: SQLStore, dns_server: ZoneServer
) -> None:
    """The first NXDOMAIN seen by one process and the second by the next one,
    an hour later, together declare the domain dead: the evidence is in the store."""
    clock = FakeClock(START)
    await _queue(store, 1, clock.now())
    first = _engine(store, clock, FakeSender(now=clock.now), dns_server)
    await first.tick()
    assert await _states(store) == ["queued"]
    clock.advance(timedelta(hours=1))
    second = _engine(store, clock, FakeSender(now=clock.now), dns_server)
    await second.tick()
    assert await _dns_suppressions(store) == ["@" + DOMAIN]
    assert await _states(store) == ["bounced"]
    assert await store.dns_evidence([DOMAIN]) == {}  # the suppression speaks now
