"""The relay's counters in the Prometheus endpoint, over real SMTP on loopback:
accepted (in all and per campaign), refusals by reason, AUTH failures."""

from __future__ import annotations

import base64
from pathlib import Path

import aiosmtplib
from prometheus_client import generate_latest

from tests.adapters.relay_harness import (
    OUTSIDE,
    PASSWORD,
    USER,
    RawClient,
    client_context,
    running_relay,
)
from warmup.adapters.metrics import MetricsExporter
from warmup.core.recipients.suppression import make_suppression
from warmup.core.relay.counts import OTHER_CAMPAIGNS, RelayCounts, refusal_reason

MESSAGE = "From: a@shop.example\r\nX-Warmup-Campaign: {name}\r\n\r\nhi\r\n"


async def _session(port: int, lines: list[str]) -> list[str]:
    """Commands from the allowed network (127.0.0.1), their replies' first lines."""
    client = await RawClient.connect(port, "127.0.0.1")
    replies = [await client.reply()]
    replies += [(await client.send(line)).splitlines()[-1] for line in lines]
    client.writer.close()
    return replies


async def test_refusals_accepts_and_auth_failures_are_counted(tmp_path: Path) -> None:
    async with running_relay(
        tmp_path,
        max_recipients=1,
        max_message_bytes=2000,
        auth_failures_before_lockout=2,
    ) as relay:
        now = relay.clock.now()
        await relay.store.add_suppressions(
            [make_suppression("gone@gmail.com", reason="hard", source="t", now=now)]
        )
        data = MESSAGE.format(name="spring") + "."
        replies = await _session(
            relay.port,
            [
                "EHLO tool.example",
                "MAIL FROM:<a@shop.example> SIZE=999999",  # 552 size
                "MAIL FROM:<a@shop.example>",
                "RCPT TO:<gone@gmail.com>",
                "RCPT TO:<ann@gmail.com>",  # 452 recipients
                "DATA",
                data,
                "MAIL FROM:<a@shop.example>",
                "RCPT TO:<x@bounce.test>",  # 550 5.1.1: no bounce intake here
                "RCPT TO:<bob@gmail.com>",
                "DATA",
                MESSAGE.format(name="autumn") + ".",
            ],
        )
        assert [r[:3] for r in replies] == [
            "220", "250", "552", "250", "250", "452", "354", "250",
            "250", "550", "250", "354", "250",
        ]  # fmt: skip
        outside = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=relay.port,
            source_address=(OUTSIDE, 0),
            start_tls=True,
            tls_context=client_context(relay.cert),
            timeout=20,
        )
        async with outside:
            await outside.ehlo()
            codes = []
            for password in ("wrong one", "wrong two", PASSWORD):
                blob = base64.b64encode(f"\0{USER}\0{password}".encode()).decode()
                codes.append(
                    (
                        await outside.execute_command(b"AUTH", b"PLAIN", blob.encode())
                    ).code
                )
            refused = await outside.execute_command(b"MAIL", b"FROM:<a@shop.example>")
        assert codes == [535, 535, 454] and refused.code == 530
        counts = relay.server.counts
        assert counts.accepted == 2
        assert counts.campaigns == {"spring": 1, "autumn": 1}
        assert counts.auth_failures == 2
        assert counts.refused == {
            "size": 1,
            "recipients": 1,
            "suppressed": 1,  # gone@gmail.com: taken, then dropped
            "not-allowed": 1,
            "lockout": 1,
            "auth-required": 1,
        }
        exporter = MetricsExporter(relay.store, relay.clock)
        exporter.count_relay(lambda: counts)
        await exporter.refresh()
        text = generate_latest(exporter.registry).decode()
    assert "warmup_relay_accepted_total 2.0" in text
    assert 'warmup_relay_refused_total{reason="size"} 1.0' in text
    assert 'warmup_relay_refused_total{reason="lockout"} 1.0' in text
    assert "warmup_relay_auth_failures_total 2.0" in text
    assert 'warmup_relay_campaign_accepted_total{campaign="autumn"} 1.0' in text


def test_campaign_labels_are_bounded() -> None:
    counts = RelayCounts(max_campaigns=3)
    for n in range(10):
        counts.accept(f"c{n}")
    counts.accept("c1")
    assert counts.campaigns == {"c0": 1, "c1": 2, "c2": 1, OTHER_CAMPAIGNS: 7}
    assert counts.accepted == 11


def test_replies_map_to_reasons() -> None:
    assert refusal_reason("421 4.7.0 Too many connections from your address") == (
        "connections"
    )
    assert refusal_reason("421 4.7.0 Too many connections, try again later") == (
        "connections"
    )
    assert refusal_reason("450 4.7.1 Too many messages from your address") == "rate"
    assert refusal_reason("552 5.3.4 Header X longer than 65536 bytes") == "content"
    assert refusal_reason("552 Error: Too much mail data") == "size"
    assert refusal_reason("451 4.3.2 Too many messages in progress") == "busy"
    assert refusal_reason("451 4.3.0 Temporary failure") == "temporary"
    assert refusal_reason("250 2.0.0 OK") is None
    assert refusal_reason("501 5.5.4 Syntax") is None


def test_replies_that_refuse_nothing_count_nowhere() -> None:
    counts = RelayCounts()
    for reply in ("250 2.0.0 OK", "354 go ahead", "501 5.5.4 Syntax", "334 VXNl"):
        counts.reply(reply)
    counts.reply("535 5.7.8 Authentication credentials invalid")
    assert (counts.refused, counts.auth_failures) == ({}, 1)
