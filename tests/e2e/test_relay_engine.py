"""A campaign submitted through the relay goes out through the engine.

`warmup relay cert` and `warmup relay adduser` set it up; the relay runs as
`warmup run` starts it (``relaying``); smtplib and aiosmtplib submit over STARTTLS
with AUTH; the dispatcher, on a fake clock, sends to a simulated Gmail and to a
scripted server that keeps what it received."""

from __future__ import annotations

import asyncio
import random
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from tests.e2e.helpers import (
    e2e_dispatcher,
    free_port,
    mx_of,
    relay_credentials,
    smtp_sender,
)
from warmup.adapters.db.reporting import campaign_summary
from warmup.adapters.db.store import SQLStore
from warmup.app.dispatcher import Dispatcher
from warmup.cli.relay_cmds import relaying
from warmup.config import load_config
from warmup.core.recipients.suppression import make_suppression
from warmup.sim.isp import SimulatedISP
from warmup.sim.profile import GMAIL
from warmup.testing.clock import FakeClock
from warmup.testing.smtp import ScriptedSMTPServer

SCHEDULE = (
    "isp: gmail\nmatch: {domains: [gmail.com]}\nramp:\n  - {days: 1-30, per_hour: 60}\n"
)
DEFAULT = "isp: default\nramp:\n  - {days: 1-30, per_hour: 60}\n"
PASSWORD = "correct horse battery"


def _project(tmp_path: Path, gmail: int, other: int) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "gmail.yaml").write_text(SCHEDULE)
    (tmp_path / "schedules" / "default.yaml").write_text(DEFAULT)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'w.db'}\n"
        "timezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        f"delivery:\n  routes: {{gmail: '127.0.0.1:{gmail}', "
        f"example.net: '127.0.0.1:{other}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        f"relay:\n  enabled: true\n  listen: 127.0.0.1:{free_port()}\n"
        "  allowed_networks: [127.0.0.1/32]\n"
        f"  tls_cert: {tmp_path / 'cert.pem'}\n  tls_key: {tmp_path / 'key.pem'}\n"
        f"  users_file: {tmp_path / 'users'}\n"
    )
    relay_credentials(config, "spring", PASSWORD)
    return config


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <shop@shop.example>"
    message["To"] = to
    message["Bcc"] = "boss@shop.example"
    message["Subject"] = "Spring sale: 20 % off ☀"
    message["Message-ID"] = f"<{to.replace('@', '.')}@shop.example>"
    message.set_content("Everything must go.\n")
    return message


def _submit_with_smtplib(port: int, cert: Path, addresses: list[str]) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.3", 0)) as client:
        client.starttls(context=context)
        client.login("spring", PASSWORD)
        for address in addresses:
            client.send_message(_message(address))


async def _drive(engine: Dispatcher, clock: FakeClock, done: object) -> None:
    for _ in range(10_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if callable(done) and done():
            return
        clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
    raise AssertionError("the mail did not go out")


async def test_submitted_campaign_goes_out_through_the_ramp(tmp_path: Path) -> None:
    clock = FakeClock()
    gmail = SimulatedISP(
        GMAIL,
        now=clock.now,
        rng=random.Random(1),
        unknown_share=0,
        full_share=0,
        greylist_share=0,
        dsn_share=0,
    )
    async with gmail, ScriptedSMTPServer() as other:
        config_path = _project(tmp_path, gmail.port, other.port)
        config = load_config(config_path)
        store = await SQLStore.open(config.settings.database)
        sender = smtp_sender(config)
        await store.add_suppressions(
            [
                make_suppression(
                    "gone@gmail.com", reason="hard", source="t", now=clock.now()
                )
            ]
        )
        try:
            async with relaying(config, store=store, clock=clock) as relay:
                assert relay is not None
                cert = tmp_path / "cert.pem"
                await asyncio.to_thread(
                    _submit_with_smtplib,
                    relay.port,
                    cert,
                    ["ann@gmail.com", "bob@gmail.com", "gone@gmail.com"],
                )
                await aiosmtplib.send(
                    _message("carol@example.net"),
                    hostname="127.0.0.1",
                    port=relay.port,
                    username="spring",
                    password=PASSWORD,
                    start_tls=True,
                    cert_bundle=str(cert),
                    source_address=("127.0.0.3", 0),
                    timeout=10,
                )
            engine = e2e_dispatcher(
                config,
                store,
                sender,
                clock,
                resolver=mx_of("example.net"),
            )
            await _drive(engine, clock, lambda: gmail.received >= 2 and other.received)
            await engine.finish()
            summary = await campaign_summary(store)
            events = await store.read_events()
        finally:
            await sender.close()
            await store.close()
    assert gmail.received == 2
    # Each outcome of relayed mail is an event carrying the client's Message-ID.
    outcomes = {(e["type"], e["recipient"]) for e in events}
    assert outcomes == {
        ("suppressed", "gone@gmail.com"),
        ("delivered", "ann@gmail.com"),
        ("delivered", "bob@gmail.com"),
        ("delivered", "carol@example.net"),
        # boss@shop.example: its domain has no MX, but one NXDOMAIN is evidence,
        # not a verdict (dns.confirm_after): it waits, with no outcome yet.
    }
    carol = next(e for e in events if e["recipient"] == "carol@example.net")
    assert carol["message_id"] == "<carol.example.net@shop.example>"
    assert all(e["message_id"] for e in events)
    assert [(s["name"], s["delivered"], s["suppressed"]) for s in summary] == [
        ("spring", 3, 1)
    ]
    (received,) = other.received
    assert received.rcpt_tos == ("carol@example.net",)
    assert received.mail_from.startswith("bounces+") and received.mail_from.endswith(
        "@bounce.test"
    )
    content = received.content
    assert content.startswith(b"X-Warmup-Id: ")
    assert b"\r\nReceived: from " in content and b"with ESMTPSA;" in content
    assert b"Message-ID: <carol.example.net@shop.example>" in content
    assert b"Bcc" not in content and b"boss@" not in content
    assert content.count(b"Message-ID") == 1 and content.count(b"\r\nDate: ") == 1
    assert content.endswith(b"Everything must go.\r\n")
