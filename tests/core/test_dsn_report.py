"""Reports for relayed mail (relay.forward_bounces): who gets one, and that our
own bounce parser reads each back as the hard bounce it reports."""

from __future__ import annotations

import email
import email.message
from datetime import UTC, datetime

import pytest

from warmup.core.bounces.parse import parse_bounce
from warmup.core.relay.dsn_report import (
    ReturnedMail,
    build_dsn,
    dsn_target,
    header_section,
    is_report,
)

OWN = ("bounce.warmup.test", "mta.warmup.test")
NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
HEADERS = (
    b"Received: from tool ([127.0.0.1])\r\n\tby relay.test with ESMTPSA; x\r\n"
    b"From: Shop <shop@shop.example>\r\nTo: ann@gmail.com\r\n"
    b"Message-ID: <client-1@shop.example>\r\nSubject: Spring sale\r\n\r\n"
)


@pytest.mark.parametrize(
    ("mail_from", "expected"),
    [
        ("bounces@shop.example", "bounces@shop.example"),
        ("<Bounces@Shop.Example>", "Bounces@shop.example"),
        ("", None),  # the null sender
        ("<>", None),
        ("x+abc@bounce.warmup.test", None),  # our VERP/bounce domain
        ("a@sub.bounce.warmup.test", None),
        ("postmaster@shop.example", None),
        ("MAILER-DAEMON@shop.example", None),
        ("no-at-sign", None),
        ("a\r\nb@shop.example", None),
    ],
)
def test_who_may_get_a_report(mail_from: str, expected: str | None) -> None:
    assert dsn_target(mail_from, OWN) == expected


def test_a_report_body_is_recognised() -> None:
    assert is_report(
        b"Content-Type: Multipart/Report; report-type=delivery-status;\r\n"
        b' boundary="x"\r\n\r\n--x--\r\n'
    )
    assert not is_report(b"Content-Type: text/plain\r\n\r\nmultipart/report\r\n")
    assert not is_report(b"Subject: x\r\n\r\nContent-Type: multipart/report\r\n")


def _report(**changes: object) -> ReturnedMail:
    values: dict[str, object] = {
        "recipient_id": 42,
        "sender": "bounces@shop.example",
        "recipient": "ann@gmail.com",
        "expired": False,
        "reply": "550 5.1.1 The email account that you tried to reach does not exist",
        "status": "5.1.1",
        "remote_mta": "gmail-smtp-in.l.google.com",
        "received_at": NOW,
        "at": NOW,
        "original_headers": HEADERS + b"Everything must go.\r\n",
    }
    values.update(changes)
    return ReturnedMail(**values)  # type: ignore[arg-type]


def _build(report: ReturnedMail) -> bytes:
    return build_dsn(
        report, reporting_mta="mta.warmup.test", from_domain=OWN[0], now=NOW
    )


def test_a_hard_bounce_report_reads_back_as_hard() -> None:
    raw = _build(_report())
    parsed = parse_bounce(raw)
    assert [(r.recipient, r.verdict.value, r.status) for r in parsed.recipients] == [
        ("ann@gmail.com", "hard", "5.1.1")
    ]
    assert "does not exist" in parsed.recipients[0].reply
    message = email.message_from_bytes(raw)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in message.walk()][1:]
    assert parts[:2] == ["text/plain", "message/delivery-status"]
    assert "text/rfc822-headers" in parts
    status = message.get_payload(1)
    assert isinstance(status, email.message.Message)
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    fields = {
        k.lower(): v
        for block in blocks
        if not isinstance(block, str)
        for k, v in block.items()
    }
    assert fields["reporting-mta"] == "dns; mta.warmup.test"
    assert fields["action"] == "failed"
    assert fields["remote-mta"] == "dns; gmail-smtp-in.l.google.com"
    assert fields["diagnostic-code"].startswith("smtp; 550 5.1.1")
    assert fields["original-recipient"] == "rfc822; ann@gmail.com"
    assert b"Message-ID: <client-1@shop.example>" in raw
    assert b"Everything must go" not in raw  # headers only
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert is_report(raw)  # and so never reported on itself


def test_an_expiry_without_a_reply_is_a_failed_5_4_7() -> None:
    raw = _build(_report(expired=True, reply=None, status=None, remote_mta=None))
    parsed = parse_bounce(raw)
    item = parsed.recipients[0]
    # Failed for good, but our own parser (like most) reads x.4.7 "delivery
    # time expired" as no proof that the mailbox is dead: not hard.
    assert (item.recipient, item.status, item.action) == (
        "ann@gmail.com",
        "5.4.7",
        "failed",
    )
    assert b"Diagnostic-Code" not in raw and b"Remote-MTA" not in raw


def test_an_expiry_after_soft_replies_keeps_the_reply_with_a_permanent_status() -> None:
    raw = _build(_report(expired=True, reply="451 4.7.1 try later", status="4.7.1"))
    item = parse_bounce(raw).recipients[0]
    assert b"\r\nStatus: 5.4.7\r\n" in raw and item.action == "failed"
    assert "451 4.7.1 try later" in item.reply


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"Subject: x\r\nTo: y\r\n\r\nbody", b"Subject: x\r\nTo: y\r\n"),
        (b"Subject: x\n\nbody\n\nmore", b"Subject: x\n"),
        (b"Subject: no body", b"Subject: no body"),
        (b"", b""),  # emptied by retention
    ],
)
def test_header_section(content: bytes, expected: bytes) -> None:
    assert header_section(content) == expected
