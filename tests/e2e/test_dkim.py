"""DKIM end to end: `warmup dkim keygen` → published record → a campaign via the
relay (STARTTLS + AUTH) and one via `enqueue` reach a local sink, and every
message verifies with dkimpy against the published key; a relayed message whose
From domain has no key is held, and `warmup status` says why."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from click.testing import CliRunner

from tests.dkim_check import signed_names, verify_all
from tests.e2e.helpers import e2e_dispatcher, free_port, mx_of, smtp_sender
from warmup.adapters.db.store import SQLStore
from warmup.app.clock import SystemClock
from warmup.app.dispatcher import Dispatcher
from warmup.cli import cli
from warmup.cli.relay_cmds import relaying
from warmup.config import load_config
from warmup.testing.clock import FakeClock
from warmup.testing.smtp import ScriptedSMTPServer

PASSWORD = "correct horse battery"
DEFAULT = "isp: default\nramp:\n  - {days: 1-30, per_hour: 600}\n"
TEMPLATE = b"""From: News <news@mail.shop.example>
Subject: Hi {{ first_name }}
Content-Type: text/plain; charset=utf-8

Hello, the same body for everyone.
"""


def _cli(config: Path | None, *args: str, input: str | None = None) -> str:
    prefix = ["-c", str(config)] if config else []
    result = CliRunner().invoke(cli, [*prefix, *args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def _keygen(tmp_path: Path, selector: str, *extra: str) -> tuple[Path, str]:
    """Run keygen; the key path and the TXT value it says to publish."""
    path = tmp_path / f"{selector}.pem"
    output = _cli(
        None, "dkim", "keygen", "shop.example", "--selector", selector,
        "--out", str(path), *extra,
    )  # fmt: skip
    line = next(x for x in output.splitlines() if " IN TXT " in x)
    assert line.startswith(f"{selector}._domainkey.shop.example. IN TXT ")
    return path, "".join(re.findall(r'"([^"]*)"', line))


def _project(tmp_path: Path, sink: int, keys: list[tuple[str, Path]]) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "default.yaml").write_text(DEFAULT)
    entries = "".join(
        f"    - {{domain: shop.example, selector: {s}, key: '{p}'}}\n" for s, p in keys
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'w.db'}\n"
        "timezone: UTC\nschedules: schedules/\n"
        "ips:\n  - {address: 127.0.0.2, helo: a.test}\n"
        f"delivery:\n  routes: {{example.net: '127.0.0.1:{sink}'}}\n"
        "  timeouts: {connect: 5s, command: 5s, data: 5s}\n  tls: {starttls: 'off'}\n"
        "bounces: {return_path: bounces@bounce.test}\n"
        f"relay:\n  enabled: true\n  listen: 127.0.0.1:{free_port()}\n"
        "  allowed_networks: [127.0.0.1/32]\n"
        f"  tls_cert: {tmp_path / 'cert.pem'}\n  tls_key: {tmp_path / 'key.pem'}\n"
        f"  users_file: {tmp_path / 'users'}\n"
        + (f"dkim:\n  keys:\n{entries}" if keys else "")
    )
    _cli(config, "relay", "cert", "--hostname", "127.0.0.1")
    _cli(config, "relay", "adduser", "spring", "--password-stdin", input=PASSWORD)
    return config


async def _enqueue(tmp_path: Path, config_path: Path, names: list[str]) -> None:
    """`warmup enqueue` of NAME@example.net (lower case) to campaign winter."""
    listing = tmp_path / "list.csv"
    rows = "".join(f"{name.lower()}@example.net,{name}\n" for name in names)
    listing.write_text("email,first_name\n" + rows)
    template = tmp_path / "msg.eml"
    template.write_bytes(TEMPLATE)
    await asyncio.to_thread(
        _cli, config_path, "enqueue", str(listing), "--template", str(template),
        "--campaign", "winter",
    )  # fmt: skip


def _relayed(sender: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Spring sale ☀"
    message["List-Unsubscribe"] = "<https://shop.example/u/1>, <mailto:u@shop.example>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("Everything   must go.  \n\n\n")
    return message


async def _submit(port: int, cert: Path, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname="127.0.0.1",
        port=port,
        username="spring",
        password=PASSWORD,
        start_tls=True,
        cert_bundle=str(cert),
        source_address=("127.0.0.3", 0),
        timeout=10,
    )


async def _drive(
    engine: Dispatcher, clock: FakeClock, sink: ScriptedSMTPServer
) -> None:
    for _ in range(2_000):  # bounded: each tick jumps to the next event
        wake = await engine.tick()
        if len(sink.received) >= 5:
            return
        clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
    raise AssertionError(f"only {len(sink.received)} messages went out")


async def test_keygen_relay_and_enqueue_mail_verifies_and_unkeyed_is_held(
    tmp_path: Path,
) -> None:
    rsa_path, rsa_record = _keygen(tmp_path, "s2026")
    ed_path, ed_record = _keygen(tmp_path, "ed2026", "--algorithm", "ed25519")
    published = {
        "s2026._domainkey.shop.example": rsa_record,
        "ed2026._domainkey.shop.example": ed_record,
    }
    # Real time to start: `enqueue` queues at it, and dkimpy refuses a future t=.
    clock = FakeClock(SystemClock().now())
    async with ScriptedSMTPServer() as sink:
        config_path = _project(
            tmp_path, sink.port, [("s2026", rsa_path), ("ed2026", ed_path)]
        )
        checked = _cli(config_path, "check")
        assert "DKIM rsa-sha256 key s2026._domainkey.shop.example: loaded" in checked
        assert (
            "DKIM ed25519-sha256 key ed2026._domainkey.shop.example: loaded" in checked
        )
        assert "DKIM signs mail From shop.example and their subdomains" in checked
        await _enqueue(tmp_path, config_path, ["Ann", "Bob", "Cid"])
        config = load_config(config_path)
        store = await SQLStore.open(config.settings.database)
        sender = smtp_sender(config)
        try:
            async with relaying(config, store=store, clock=clock) as relay:
                assert relay is not None
                cert = tmp_path / "cert.pem"
                for to in ("dan@example.net", "eve@example.net"):
                    await _submit(
                        relay.port, cert, _relayed("Shop <shop@shop.example>", to)
                    )
                await _submit(
                    relay.port, cert, _relayed("x@unkeyed.example", "fay@example.net")
                )
            engine = e2e_dispatcher(
                config,
                store,
                sender,
                clock,
                resolver=mx_of("example.net"),
            )
            await _drive(engine, clock, sink)
            for _ in range(3):  # the held one stays held across rechecks
                clock.advance(timedelta(minutes=20))
                await engine.tick()
            await engine.finish()
            hashed = engine._renderer._signer.body_hashes
        finally:
            await sender.close()
            await store.close()
        status = await asyncio.to_thread(_cli, config_path, "status", "--json")
        text = await asyncio.to_thread(_cli, config_path, "status")
    received = {r.rcpt_tos[0]: r.content for r in sink.received}
    assert sorted(received) == [
        "ann@example.net", "bob@example.net", "cid@example.net",
        "dan@example.net", "eve@example.net",
    ]  # fmt: skip
    for content in received.values():
        assert verify_all(content, published) == 2  # RSA and Ed25519, both verify
    relayed = signed_names(received["dan@example.net"])[0]
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= set(
        relayed
    )
    assert relayed.count("from") == 2  # over-signed
    assert {"from", "subject", "to"} <= set(
        signed_names(received["ann@example.net"])[0]
    )
    # One body for the three template recipients, one for the two relayed.
    assert hashed == 2
    held = [json.loads(x) for x in status.splitlines() if '"held"' in x]
    assert held == [
        {
            "kind": "held",
            "held": [
                {
                    "campaign": "spring",
                    "reason": "held: no DKIM key for From domain unkeyed.example; "
                    "add one to dkim.keys or set dkim.unsigned: send",
                    "recipients": 1,
                }
            ],
        }
    ]
    assert "held back" in text and "unkeyed.example" in text


async def test_a_live_unauthenticated_reply_pauses_the_lane_pointing_at_doctor(
    tmp_path: Path,
) -> None:
    clock = FakeClock(SystemClock().now())
    async with ScriptedSMTPServer() as sink:
        sink.on_data(
            "550 5.7.26 Your email has been blocked because the sender is "
            "unauthenticated. Gmail requires all senders to authenticate with "
            "either SPF or DKIM."
        )
        config_path = _project(tmp_path, sink.port, [])
        await _enqueue(tmp_path, config_path, ["Ann", "Bob"])
        config = load_config(config_path)
        store = await SQLStore.open(config.settings.database)
        sender = smtp_sender(config)
        try:
            engine = e2e_dispatcher(
                config,
                store,
                sender,
                clock,
                resolver=mx_of("example.net"),
            )
            for _ in range(20):  # bounded: the first send is refused and pauses
                wake = await engine.tick()
                if sink.received or any(
                    r.lane.state == "paused" for r in engine.lanes.values()
                ):
                    break
                clock.advance(max(wake - clock.now(), timedelta(seconds=1)))
            await engine.finish()
        finally:
            await sender.close()
            await store.close()
        status = await asyncio.to_thread(_cli, config_path, "status", "--json")
    lane = json.loads(status.splitlines()[0])
    assert lane["state"] == "paused"
    event = lane["last_event"]
    assert event["cause"] == "authentication"
    assert "run `warmup doctor`" in event["detail"]
    assert "5.7.26" in event["reply"]
