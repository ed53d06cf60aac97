"""Reports not signed by us cost nothing by default (issue 12, item 1).

1,000 recipients are really sent (engine, fake sender, real SQLite); then one
forged DSN with no VERP token lists them all: through the relay from an outside
address, through `warmup bounces ingest`, and through the intake itself."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.adapters.relay_harness import RawClient, Relay, running_relay
from warmup.adapters.db.schema import recipients, suppressions
from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.dispatcher import Dispatcher
from warmup.app.ingest import BounceIntake
from warmup.app.ports import TemplateRecord
from warmup.app.settings import EngineSettings
from warmup.cli import cli
from warmup.core.bounces.late import Reporter, UnsignedRule
from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.recipient import parse_recipient_row
from warmup.core.settings import DeliverySettings, RetryPolicy, Route, SourceIP
from warmup.testing.clock import FakeClock
from warmup.testing.fakes import FakeResolver, FakeSender

COUNT = 1000
ADDRESSES = [f"u{n}@gmail.com" for n in range(COUNT)]
SECRET = "unsigned-secret"
RETURN_PATH = "bounces@bounce.test"  # the relay harness's bounce domain
WEEK = timedelta(days=7)
GMAIL = Schedule(
    isp="gmail",
    domains=("gmail.com",),
    steps=(RampStep(first_day=1, last_day=9, per_hour=36_000),),
)
DEFAULT = Schedule(
    isp="default", steps=(RampStep(first_day=1, last_day=1, per_hour=5),)
)


async def _deliver_all(url: str, clock: FakeClock) -> None:
    store = await SQLStore.open(url)
    try:
        record = TemplateRecord(
            name="t.eml", sha256="c" * 64, content=b"Subject: Hi\r\n\r\nHello\r\n"
        )
        campaign = await store.ensure_campaign("c", record, clock.now())
        rows = [parse_recipient_row({"email": a}, set()) for a in ADDRESSES]
        await store.insert_recipients(campaign.id, rows, ["gmail"] * COUNT, clock.now())
        engine = Dispatcher(
            store=store,
            sender=FakeSender(now=clock.now),
            resolver=FakeResolver(),
            clock=clock,
            settings=EngineSettings(
                schedules={"gmail": GMAIL, "default": DEFAULT},
                ips=(SourceIP(address="127.0.0.2", helo="a.test"),),
                delivery=DeliverySettings(
                    routes={"gmail": Route(host="127.0.0.1", port=2525)},
                    batch_size=500,
                ),
                return_path=RETURN_PATH,
                verp_secret=SECRET.encode(),
                tz=UTC,
                node="test-node",
                maintenance_every=timedelta(hours=1),
                idle_wake=timedelta(hours=1),
                catch_up=500,
            ),
        )
        for _ in range(1000):  # bounded: each tick sends a batch or jumps ahead
            if (await store.count_recipients()).get("delivered", 0) == COUNT:
                return
            wake = await engine.tick()
            clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
        raise AssertionError("the engine did not deliver them all")
    finally:
        await store.close()


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """A SQLite file where 1,000 recipients were sent within the last hour (of the
    wall clock: `bounces ingest` reads it); each test works on a copy."""
    path = tmp_path_factory.mktemp("delivered") / "sent.db"
    start = SystemClock().now() - timedelta(hours=1)
    clock = FakeClock(start)
    asyncio.run(_deliver_all(f"sqlite:///{path}", clock))
    return path, clock.now()


@pytest.fixture
def database(delivered: tuple[Path, datetime], tmp_path: Path) -> str:
    copy = tmp_path / "w.db"
    shutil.copyfile(delivered[0], copy)
    return f"sqlite:///{copy}"


def forged_dsn(addresses: list[str], *, received_from: str = "192.0.2.66") -> bytes:
    """One DSN without any token of ours, listing every address as failed."""
    blocks = "\n".join(
        f"Final-Recipient: rfc822; {a}\nAction: failed\nStatus: 5.1.1\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
        for a in addresses
    )
    text = (
        f"Received: from mx.forger.example (mx.forger.example [{received_from}])\n"
        "\tby bounce.test; Thu, 3 Dec 2026 10:00:00 +0000\n"
        "From: MAILER-DAEMON@mx.forger.example\n"
        "To: postmaster@bounce.test\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Message-ID: <forged-1@mx.forger.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n'
        "\n--b\nContent-Type: text/plain\n\nThese could not be delivered.\n"
        "--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.forger.example\n\n"
        f"{blocks}"
        "--b\nContent-Type: text/rfc822-headers\n\nSubject: sale\n--b--\n"
    )
    return text.replace("\n", "\r\n").encode()


async def _suppressed(url: str) -> list[str]:
    store = await SQLStore.open(url)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(select(suppressions.c.address))).all()
            query = select(func.count()).where(recipients.c.state == "bounced")
            bounced = (await conn.execute(query)).scalar_one()
    finally:
        await store.close()
    assert bounced == len(rows)
    return sorted(str(r[0]) for r in rows)


def _intake(store: SQLStore, clock: FakeClock, rule: UnsignedRule) -> BounceIntake:
    return BounceIntake(
        store,
        clock=clock,
        return_path=RETURN_PATH,
        secret=SECRET.encode(),
        retry=RetryPolicy(),
        unsigned=rule,
    )


# -- the intake ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (UnsignedRule(), []),
        (UnsignedRule(lookback=WEEK), ["u0@gmail.com"]),
    ],
    ids=["default", "lookback"],
)
async def test_one_forged_dsn_costs_at_most_one_address(
    database: str,
    delivered: tuple[Path, datetime],
    caplog: pytest.LogCaptureFixture,
    rule: UnsignedRule,
    expected: list[str],
) -> None:
    """The bug: one unsigned DSN listing 1,000 recently mailed recipients
    suppressed all of them, and nothing was logged at INFO."""
    caplog.set_level(logging.INFO, logger="warmup.app.ingest")
    clock = FakeClock(delivered[1])
    store = await SQLStore.open(database)
    try:
        result = await _intake(store, clock, rule).ingest(
            forged_dsn(ADDRESSES), source="forged"
        )
    finally:
        await store.close()
    assert len(result.events) == COUNT
    assert await _suppressed(database) == expected
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    if expected:
        assert "unsigned report, matched by its recipient: suppressed" in line
    else:
        assert "1000 recipient(s)" in line and "changes nothing" in line
        assert "192.0.2.66" in line and "recipient_lookback is off" in line


async def test_unsigned_reports_are_rate_limited_per_reporting_host(
    database: str, delivered: tuple[Path, datetime]
) -> None:
    clock = FakeClock(delivered[1])
    rule = UnsignedRule(lookback=WEEK, per_host_per_hour=2)
    store = await SQLStore.open(database)
    try:
        intake = _intake(store, clock, rule)
        for n in range(4):
            await intake.ingest(forged_dsn([ADDRESSES[n]]), source=f"a{n}")
        await intake.ingest(
            forged_dsn([ADDRESSES[10]], received_from="198.51.100.7"), source="b"
        )
        clock.advance(timedelta(hours=1))
        await intake.ingest(forged_dsn([ADDRESSES[20]]), source="a-later")
    finally:
        await store.close()
    acted = ["u0@gmail.com", "u1@gmail.com", "u10@gmail.com", "u20@gmail.com"]
    assert await _suppressed(database) == sorted(acted)


# -- through the relay, from 127.0.0.5 -------------------------------------------


async def _post(relay: Relay, source: str, data: bytes) -> str:
    client = await RawClient.connect(relay.port, source=source)
    await client.reply()
    await client.send("EHLO mx.forger.example")
    await client.send("MAIL FROM:<>")
    await client.send("RCPT TO:<postmaster@bounce.test>")
    assert (await client.send("DATA")).startswith("354")
    answer = await client.send(data + b".")
    await client.close()
    return answer


@pytest.mark.parametrize(
    ("rule", "source", "expected"),
    [
        (UnsignedRule(), "127.0.0.5", []),
        (UnsignedRule(lookback=WEEK), "127.0.0.5", []),
        (UnsignedRule(lookback=WEEK, from_outside=True), "127.0.0.5", ["u0@gmail.com"]),
        (UnsignedRule(lookback=WEEK), "127.0.0.1", ["u0@gmail.com"]),
    ],
    ids=["default", "lookback", "lookback-from-outside", "lookback-inside"],
)
async def test_a_forged_dsn_over_the_relay(
    tmp_path: Path,
    database: str,
    delivered: tuple[Path, datetime],
    rule: UnsignedRule,
    source: str,
    expected: list[str],
) -> None:
    clock = FakeClock(delivered[1])
    store = await SQLStore.open(database)
    intake = _intake(store, clock, rule)

    async def sink(data: bytes, recipient: str, reporter: Reporter) -> None:
        await intake.ingest(
            data, source="relay", envelope_to=(recipient,), reporter=reporter
        )

    try:
        async with running_relay(tmp_path, database, sink=sink) as relay:
            answer = await _post(relay, source, forged_dsn(ADDRESSES))
            assert answer.startswith("250"), answer
            assert relay.reporters == [
                Reporter(host=source, outside=source != "127.0.0.1")
            ]
    finally:
        await store.close()
    assert await _suppressed(database) == expected


# -- warmup bounces ingest ---------------------------------------------------------


def _config(tmp_path: Path, database: str, bounces: str) -> Path:
    (tmp_path / "schedules").mkdir(exist_ok=True)
    (tmp_path / "schedules" / "default.yaml").write_text(
        "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {database}\ntimezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        f"bounces: {{return_path: {RETURN_PATH}{bounces}}}\n"
    )
    return config


@pytest.mark.parametrize(
    ("bounces", "expected"),
    [("", []), (", recipient_lookback: 7d", ["u0@gmail.com"])],
    ids=["default", "lookback"],
)
async def test_bounces_ingest_follows_the_same_rule(
    tmp_path: Path,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    bounces: str,
    expected: list[str],
) -> None:
    monkeypatch.setenv("WARMUP_VERP_SECRET", SECRET)
    mail = tmp_path / "forged.eml"
    mail.write_bytes(forged_dsn(ADDRESSES))
    config = _config(tmp_path, database, bounces)
    args = ["-c", str(config), "bounces", "ingest", str(mail)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    lines: list[dict[str, Any]] = [json.loads(x) for x in result.stdout.splitlines()]
    outcomes = [line["outcome"] for line in lines]
    assert len(outcomes) == COUNT
    assert outcomes.count("suppressed") == len(expected)
    assert await _suppressed(database) == expected
    hint = "1 unsigned report(s) changed nothing: bounces.recipient_lookback is off"
    assert (hint in result.stderr) == (not expected), result.stderr


async def test_reports_our_mta_hands_on_count_against_their_sender(
    tmp_path: Path, database: str, delivered: tuple[Path, datetime]
) -> None:
    """A trusted relay client (our own MTA on 127.0.0.1) forwards reports from
    many hosts: each is counted against the host in the Received field it wrote,
    not all against 127.0.0.1."""
    clock = FakeClock(delivered[1])
    store = await SQLStore.open(database)
    intake = _intake(store, clock, UnsignedRule(lookback=WEEK, per_host_per_hour=1))

    async def sink(data: bytes, recipient: str, reporter: Reporter) -> None:
        await intake.ingest(
            data, source="relay", envelope_to=(recipient,), reporter=reporter
        )

    try:
        async with running_relay(tmp_path, database, sink=sink) as relay:
            for n, host in enumerate(["192.0.2.1", "192.0.2.1", "198.51.100.2"]):
                dsn = forged_dsn([ADDRESSES[n]], received_from=host)
                assert (await _post(relay, "127.0.0.1", dsn)).startswith("250")
    finally:
        await store.close()
    assert await _suppressed(database) == ["u0@gmail.com", "u2@gmail.com"]
