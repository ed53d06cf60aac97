"""relay.forward_bounces end to end: mail relayed through `relaying`, sent by the
engine to an aiosmtpd "Gmail" on loopback that refuses some recipients and
defers one past its deadline; the forwarder turns the outcomes into RFC 3464
reports that the engine sends, with the null sender, to an aiosmtpd server
holding the client's bounce mailbox. Loops, duplicates and re-runs send none."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from tests.e2e.helpers import e2e_dispatcher, free_port, relay_credentials, smtp_sender
from warmup.adapters.db.relay_store import SQLRelayStore
from warmup.adapters.db.schema import messages
from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.app.forward import BounceForwarder
from warmup.app.ingest import BounceIntake
from warmup.app.shipping import Shipper
from warmup.cli import cli
from warmup.cli.relay_cmds import bounce_forwarder, relaying, start_cursor
from warmup.config import load_config
from warmup.core.bounces.parse import parse_bounce
from warmup.core.event import DeliveryCursor
from warmup.sim import reports
from warmup.testing.clock import FakeClock
from warmup.testing.smtp import ScriptedSMTPServer

SCHEDULES = {
    "gmail.yaml": "isp: gmail\nmatch: {domains: [gmail.com]}\n"
    "ramp:\n  - {days: 1-30, per_hour: 600}\n",
    "default.yaml": "isp: default\nramp:\n  - {days: 1-30, per_hour: 600}\n",
}
PASSWORD = "correct horse battery"
REFUSED = "550 5.1.1 The email account that you tried to reach does not exist"
REPORT_BODY = (
    "Content-Type: multipart/report; report-type=delivery-status;"
    ' boundary="b"\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n'
)


def _project(tmp_path: Path, gmail: int, shop: int) -> Path:
    (tmp_path / "schedules").mkdir()
    for name, text in SCHEDULES.items():
        (tmp_path / "schedules" / name).write_text(text)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'w.db'}\n"
        "timezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: mta.warmup.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{gmail}', "
        f"shop.example: '127.0.0.1:{shop}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        f"relay:\n  enabled: true\n  listen: 127.0.0.1:{free_port()}\n"
        "  allowed_networks: [127.0.0.1/32]\n  forward_bounces: true\n"
        f"  tls_cert: {tmp_path / 'cert.pem'}\n  tls_key: {tmp_path / 'key.pem'}\n"
        f"  users_file: {tmp_path / 'users'}\n"
    )
    relay_credentials(config, "spring", PASSWORD)
    return config


def _message(to: str, extra: str = "", body: str = "Hello.\r\n") -> bytes:
    return (
        f"From: Shop <shop@shop.example>\r\nTo: {to}\r\n"
        f"Message-ID: <{to}.1@shop.example>\r\nSubject: Spring sale\r\n{extra}"
        f"{'' if extra.startswith('Content-Type') else chr(13) + chr(10)}{body}"
    ).encode()


def _submit(port: int, cert: Path, deadline: str) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.3", 0)) as client:
        client.starttls(context=context)
        client.login("spring", PASSWORD)
        sender = "bounces@shop.example"
        client.sendmail(
            sender,
            ["dead@gmail.com", "ann@gmail.com", "later@gmail.com"],
            _message("x"),
        )
        client.sendmail("", ["dead2@gmail.com"], _message("dead2"))  # <>
        report = _message("dead3", "Content-Type: multipart/report;", REPORT_BODY)
        client.sendmail(sender, ["dead3@gmail.com"], report)
        client.sendmail("x@bounce.test", ["dead4@gmail.com"], _message("dead4"))
        late = _message("late", f"X-Warmup-Deadline: {deadline}\r\n")
        client.sendmail(sender, ["late@gmail.com"], late)
        client.sendmail("gone@shop.example", ["dead5@gmail.com"], _message("dead5"))


def _gmail(peer: str, command: str, argument: str) -> str | None:
    if command == "RCPT" and argument.startswith("dead"):
        return REFUSED
    if command == "RCPT" and argument == "late@gmail.com":
        return "451 4.7.1 Try again later"
    return None


def _shop(peer: str, command: str, argument: str) -> str | None:
    if command == "RCPT" and argument == "gone@shop.example":
        return "550 5.1.1 gone@shop.example: no such mailbox"
    return None


async def _drive(engine: Dispatcher, clock: FakeClock, done: object) -> None:
    for _ in range(5_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if callable(done) and await done():
            return
        clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
    raise AssertionError("the engine did not get there")


async def _forward(
    store: SQLStore, forwarder: BounceForwarder, clock: FakeClock
) -> int:
    shipper = Shipper(store, [forwarder], clock)
    for _ in range(100):  # bounded: a batch per step
        if not await shipper.ship(forwarder):
            return forwarder.queued
        clock.advance(timedelta(seconds=1))
    raise AssertionError("the forwarder did not catch up")


async def _reports(store: SQLStore) -> int:
    query = select(func.count()).where(messages.c.dsn_for.is_not(None))
    async with store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_hard_bounces_and_expiries_go_back_to_the_original_sender(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    gmail, shop = ScriptedSMTPServer(reply_for=_gmail), ScriptedSMTPServer()
    shop.reply_for = _shop
    async with gmail, shop:
        config = load_config(_project(tmp_path, gmail.port, shop.port))
        store = await SQLStore.open(config.settings.database)
        sender = smtp_sender(config)
        submissions = SQLRelayStore(store, durable=False)
        try:
            forwarder = bounce_forwarder(config, store, submissions=submissions)
            await start_cursor(store, forwarder)
            async with relaying(config, store=store, clock=clock) as relay:
                assert relay is not None
                deadline = (clock.now() + timedelta(minutes=30)).isoformat()
                await asyncio.to_thread(
                    _submit, relay.port, tmp_path / "cert.pem", deadline
                )
            engine = e2e_dispatcher(config, store, sender, clock)

            async def outcomes_final() -> bool:
                seen = {(e["type"], e["recipient"]) for e in await store.read_events()}
                dead = {f"dead{n}@gmail.com" for n in ("", 2, 3, 4, 5)}
                return {("bounced", a) for a in dead} | {
                    ("expired", "late@gmail.com")
                } <= seen

            await _drive(engine, clock, outcomes_final)
            # later@gmail.com was taken (250), then bounced by a DSN to our VERP.
            (taken,) = [m for m in gmail.received if m.rcpt_tos == ("later@gmail.com",)]
            late_dsn = reports.build_dsn(
                to=taken.mail_from.strip("<>"),
                recipient="later@gmail.com",
                diagnostic="550 5.1.1 later@gmail.com: user unknown",
                reporting_mta="mx.gmail.test",
                original_headers=reports.returned_headers(taken.content),
                now=clock.now(),
            )
            intake = BounceIntake(
                store,
                clock=clock,
                return_path="bounces@bounce.test",
                secret=b"s",
                retry=config.settings.delivery.retry,
            )
            await intake.ingest(late_dsn, source="test", envelope_to=(taken.mail_from,))
            assert await _forward(store, forwarder, clock) == 4

            async def reports_sent() -> bool:
                return len(shop.received) == 3 and any(
                    e["recipient"] == "gone@shop.example"
                    for e in await store.read_events(types=["bounced"])
                )

            await _drive(engine, clock, reports_sent)
            # The report that bounced is no reason for another one.
            assert await _forward(store, forwarder, clock) == 4
            # Done again from the start (a crash before the cursor moved): none new.
            await store.save_cursor(DeliveryCursor(name=forwarder.name))
            await _forward(store, forwarder, clock)
            assert await _reports(store) == 4
            await engine.finish()
        finally:
            submissions.close()
            await sender.close()
            await store.close()
    assert [m.rcpt_tos for m in shop.received] == [("bounces@shop.example",)] * 3
    assert {m.mail_from for m in shop.received} == {"<>"}  # the null sender
    by_recipient = {
        parse_bounce(m.content).recipients[0].recipient: m.content
        for m in shop.received
    }
    assert set(by_recipient) == {"dead@gmail.com", "late@gmail.com", "later@gmail.com"}
    later = parse_bounce(by_recipient["later@gmail.com"]).recipients[0]
    assert (later.verdict.value, later.status) == ("hard", "5.1.1")
    assert "user unknown" in later.reply
    hard = parse_bounce(by_recipient["dead@gmail.com"]).recipients[0]
    assert (hard.verdict.value, hard.status) == ("hard", "5.1.1")
    assert REFUSED in hard.reply
    assert b"Message-ID: <x.1@shop.example>" in by_recipient["dead@gmail.com"]
    late = parse_bounce(by_recipient["late@gmail.com"]).recipients[0]
    assert (late.action, late.status) == ("failed", "5.4.7")
    # `warmup bounces parse` reads the report back as the hard bounce it is.
    saved = tmp_path / "report.eml"
    saved.write_bytes(by_recipient["dead@gmail.com"])
    result = CliRunner().invoke(cli, ["bounces", "parse", str(saved)])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines()]
    assert (line["recipient"], line["verdict"]) == ("dead@gmail.com", "hard")
    assert line["reply"].startswith("550 5.1.1")
