"""`warmup run` as a real process with the relay on (the example config, pointed at
loopback): AUTH over STARTTLS is accepted and sent by the ramp; the same without
AUTH from outside the allowed networks is refused; SIGKILL right after the 250
loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import sqlite3
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.e2e.helpers import free_port
from warmup.cli import cli
from warmup.config import EXAMPLE_CONFIG
from warmup.sim.reports import build_dsn, returned_headers
from warmup.testing.smtp import ScriptedSMTPServer

FAST = (
    "isp: gmail\nmatch: {domains: [gmail.com]}\n"
    "ramp:\n  - {days: 1-30, per_hour: 360000}\n"
)
DEFAULT = "isp: default\nramp:\n  - {days: 1, per_hour: 5}\n"
ENV = {**os.environ, "WARMUP_VERP_SECRET": "test-secret"}
PASSWORD = "correct horse battery"
MESSAGE = (
    b"From: shop@shop.example\r\nTo: ann@gmail.com\r\n"
    b"X-Warmup-Campaign: kill-test\r\nSubject: survive\r\n\r\nStill here.\r\n"
)


def _config(tmp_path: Path, sink_port: int, relay_port: int) -> Path:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "gmail.yaml").write_text(FAST)
    (tmp_path / "schedules" / "default.yaml").write_text(DEFAULT)
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["database"] = f"sqlite:///{tmp_path / 'warmup.db'}"
    data["schedules"] = str(tmp_path / "schedules")
    data["node"] = "node-a"
    data["timezone"] = "UTC"
    data["ips"] = [{"address": "127.0.0.2", "helo": "mta.test", "host": "node-a"}]
    data["delivery"]["routes"] = {"gmail": f"127.0.0.1:{sink_port}"}
    data["delivery"]["tls"]["starttls"] = "off"
    data["delivery"]["timeouts"] = {"connect": "5s", "command": "5s", "data": "5s"}
    data["bounces"]["maildir"] = None
    data.pop("metrics", None)
    data["relay"].update(
        listen=f"127.0.0.1:{relay_port}",
        allowed_networks=["127.0.0.1/32"],
        tls_cert=str(tmp_path / "cert.pem"),
        tls_key=str(tmp_path / "key.pem"),
        users_file=str(tmp_path / "users"),
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    assert runner.invoke(cli, ["-c", str(config), "relay", "cert"]).exit_code == 0
    added = runner.invoke(
        cli,
        ["-c", str(config), "relay", "adduser", "tool", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    return config


async def _start(config: Path, log: Path, port: int) -> asyncio.subprocess.Process:
    with log.open("ab") as handle:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warmup",
            "-c",
            str(config),
            "run",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=handle,
            env=ENV,
        )
    for _ in range(600):  # up to ~30 s for the listener to come up
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert process.returncode is None, "warmup run exited; see run.log"
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return process
    raise AssertionError("the relay never listened; see run.log")


def _submit(port: int, cert: Path, *, login: bool, source: str) -> str:
    context = ssl.create_default_context(cafile=str(cert))
    with smtplib.SMTP(
        "127.0.0.1", port, source_address=(source, 0), timeout=10
    ) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo()
        if login:
            smtp.login("tool", PASSWORD)
        for code, text in (smtp.mail("shop@shop.example"), smtp.rcpt("ann@gmail.com")):
            if code != 250:
                return f"{code} {text.decode()}"
        code, text = smtp.data(MESSAGE)
        return f"{code} {text.decode()}"


async def test_sigkill_after_the_250_loses_nothing(tmp_path: Path) -> None:
    arrived = asyncio.Event()

    def reply(peer: str, command: str, argument: str) -> str | None:
        if command == "DATA":
            arrived.set()
        return None

    relay_port = free_port()
    async with ScriptedSMTPServer(reply_for=reply) as sink:
        config = _config(tmp_path, sink.port, relay_port)
        log = tmp_path / "run.log"
        cert = tmp_path / "cert.pem"
        process = await _start(config, log, relay_port)
        try:
            refused = await asyncio.to_thread(
                _submit, relay_port, cert, login=False, source="127.0.0.3"
            )
            # 554 at RCPT: the listener takes mail from anyone for the bounce
            # domain, so it refuses the relaying, not the session.
            assert refused.startswith("554 5.7.1"), refused
            answer = await asyncio.to_thread(
                _submit, relay_port, cert, login=True, source="127.0.0.3"
            )
            process.kill()  # right after the 250: no chance to send or clean up
            await process.wait()
            assert answer.startswith("250 2.0.0 OK queued as"), answer
            process = await _start(config, log, relay_port)
            await asyncio.wait_for(arrived.wait(), 60)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), 15)
                assert code == 0, log.read_text()[-2000:]
    (received,) = sink.received
    assert received.rcpt_tos == ("ann@gmail.com",)
    assert b"X-Warmup-Campaign" not in received.content
    assert received.content.endswith(b"Still here.\r\n")


def _deliver_report(port: int, to: str, report: bytes) -> str:
    """An ISP delivering a DSN to us: plain SMTP from outside, no AUTH."""
    with smtplib.SMTP(
        "127.0.0.1", port, source_address=("127.0.0.3", 0), timeout=10
    ) as smtp:
        smtp.ehlo("mx.gmail.test")
        for code, text in (smtp.mail(""), smtp.rcpt(to)):
            if code != 250:
                return f"{code} {text.decode()}"
        code, text = smtp.data(report)
        return f"{code} {text.decode()}"


async def test_a_dsn_mailed_to_the_bounce_domain_is_applied(tmp_path: Path) -> None:
    arrived = asyncio.Event()

    def reply(peer: str, command: str, argument: str) -> str | None:
        if command == "DATA":
            arrived.set()
        return None

    relay_port = free_port()
    async with ScriptedSMTPServer(reply_for=reply) as sink:
        config = _config(tmp_path, sink.port, relay_port)
        log = tmp_path / "run.log"
        process = await _start(config, log, relay_port)
        try:
            answer = await asyncio.to_thread(
                _submit,
                relay_port,
                tmp_path / "cert.pem",
                login=True,
                source="127.0.0.3",
            )
            assert answer.startswith("250"), answer
            await asyncio.wait_for(arrived.wait(), 60)
            (sent,) = sink.received
            verp = sent.mail_from
            assert verp.startswith("bounces+r") and verp.endswith("@bounce.example.com")
            dsn = build_dsn(
                to=verp,
                recipient="ann@gmail.com",
                diagnostic="550 5.1.1 The email account that you tried to reach "
                "does not exist.",
                reporting_mta="mx.gmail.test",
                original_headers=returned_headers(sent.content),
                now=datetime(2030, 1, 1, tzinfo=UTC),
            )
            forged = verp.rsplit("-", 1)[0] + "-0000000000@bounce.example.com"
            refused = await asyncio.to_thread(_deliver_report, relay_port, forged, dsn)
            assert refused.startswith("250"), refused  # accepted, then ignored
            accepted = await asyncio.to_thread(_deliver_report, relay_port, verp, dsn)
            assert accepted.startswith("250"), accepted
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 15)
    assert code == 0, log.read_text()[-2000:]
    with sqlite3.connect(tmp_path / "warmup.db") as db:
        suppressed = db.execute("SELECT address, reason FROM suppressions").fetchall()
        events = db.execute("SELECT found_by, outcome FROM bounce_events").fetchall()
    assert suppressed == [("ann@gmail.com", "userunknown")]
    assert events == [("verp", "suppressed")]
    assert "forged bounce" in log.read_text()
