"""Relayed messages: header surgery that keeps the client's bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warmup.core.relay.message import (
    PreparedMessage,
    header_names,
    prepare_message,
    received_field,
    with_headers,
)
from warmup.core.relay.policy import Refusal

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
RECEIVED = "Received: from x ([127.0.0.1])\r\n\tby y with ESMTP; now\r\n"


def _prepare(raw: bytes) -> PreparedMessage | Refusal:
    return prepare_message(
        raw,
        campaign_header="X-Warmup-Campaign",
        trace_header="X-Warmup-Id",
        received=RECEIVED,
    )


def test_bcc_campaign_and_trace_headers_go_the_rest_stays_byte_for_byte() -> None:
    body = b"\r\nHello \xc3\xa9\r\n.. dots and\r\nBcc: in the body stays\r\n"
    raw = (
        b"From: shop@shop.example\r\n"
        b"To: Ann <ann@example.com>\r\n"
        b"Bcc: hidden@example.com,\r\n"
        b"  other@example.com\r\n"
        b"x-warmup-campaign:   spring\r\n"
        b"Resent-Bcc: r@example.com\r\n"
        b"X-Warmup-Id: forged\r\n"
        b"Subject: =?utf-8?q?Hi?=\r\n" + body
    )
    prepared = _prepare(raw)
    assert isinstance(prepared, PreparedMessage)
    assert prepared.campaign == "spring"
    assert prepared.content == (
        RECEIVED.encode()
        + b"From: shop@shop.example\r\n"
        + b"To: Ann <ann@example.com>\r\n"
        + b"Subject: =?utf-8?q?Hi?=\r\n"
        + body
    )


def test_folded_campaign_header_and_first_one_wins() -> None:
    raw = (
        b"X-Warmup-Campaign: black\r\n friday\r\nX-Warmup-Campaign: other\r\n"
        b"Subject: x\r\n\r\nbody"
    )
    prepared = _prepare(raw)
    assert isinstance(prepared, PreparedMessage)
    assert prepared.campaign == "black friday"
    assert b"Warmup-Campaign" not in prepared.content


def test_no_campaign_header_and_bare_newlines() -> None:
    prepared = _prepare(b"Subject: x\nFrom: a@b.example\n\nbody\n")
    assert isinstance(prepared, PreparedMessage)
    assert prepared.campaign is None
    assert (
        prepared.content
        == RECEIVED.encode() + b"Subject: x\nFrom: a@b.example\n\nbody\n"
    )


def test_headers_without_a_body() -> None:
    prepared = _prepare(b"Subject: only headers")
    assert isinstance(prepared, PreparedMessage)
    assert prepared.content.endswith(b"Subject: only headers")


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\njust a body\r\n", b"no header here\r\n\r\nbody", b" continued\r\n\r\n"],
)
def test_a_message_without_headers_is_refused(raw: bytes) -> None:
    assert _prepare(raw) == Refusal(550, "5.6.0", "The message has no header section")


@pytest.mark.parametrize("value", [b"", b"   ", b"x" * 300])
def test_a_bad_campaign_header_is_refused(value: bytes) -> None:
    result = _prepare(b"X-Warmup-Campaign: " + value + b"\r\n\r\nbody")
    assert isinstance(result, Refusal)
    assert result.reply.startswith("550 5.6.0 Bad X-Warmup-Campaign header")


@pytest.mark.parametrize(
    ("helo", "expected"),
    [
        ("mta.example.com", "mta.example.com"),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("evil\rBcc: x@y", "unknown"),
        ("has space", "unknown"),
        (None, "unknown"),
    ],
)
def test_received_field_sanitises_the_helo_name(
    helo: str | None, expected: str
) -> None:
    field = received_field(
        helo=helo,
        peer_ip="192.0.2.1",
        hostname="relay.test",
        protocol="ESMTPSA",
        now=NOW,
    )
    assert field == (
        f"Received: from {expected} ([192.0.2.1])\r\n"
        "\tby relay.test with ESMTPSA; Wed, 02 Jan 2030 03:04:05 +0000\r\n"
    )


def test_header_names_and_with_headers() -> None:
    content = b"Message-ID: <a@b>\r\nDATE: today\r\n\r\nbody"
    assert header_names(content) == frozenset({"message-id", "date"})
    assert (
        with_headers(content, [("X-Warmup-Id", "t1")])
        == b"X-Warmup-Id: t1\r\n" + content
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"Wed, 02 Jan 2030 12:00:00 +0900", datetime(2030, 1, 2, 3, tzinfo=UTC)),
        (b"2030-01-02T03:00:00Z", datetime(2030, 1, 2, 3, tzinfo=UTC)),
        (b"2030-01-02 03:00", datetime(2030, 1, 2, 3, tzinfo=UTC)),  # UTC if naive
    ],
)
def test_the_deadline_header_is_read_and_removed(
    value: bytes, expected: datetime
) -> None:
    raw = b"From: a@b.example\r\nX-Warmup-Deadline: " + value + b"\r\n\r\nhi\r\n"
    prepared = _prepare(raw)
    assert isinstance(prepared, PreparedMessage)
    assert prepared.deadline == expected
    assert b"deadline" not in prepared.content.lower()


def test_a_bad_deadline_header_is_refused() -> None:
    raw = b"From: a@b.example\r\nX-Warmup-Deadline: soon\r\n\r\nhi\r\n"
    refusal = _prepare(raw)
    assert isinstance(refusal, Refusal)
    assert refusal.reply.startswith("550 5.6.0 Bad X-Warmup-Deadline header")
    assert "'soon'" in refusal.reply


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("high", 2e12),
        ("LOW", -1.0),
        ("normal", NOW.timestamp()),
        ("0", 1e12),
        ("72.5", 1e12 + 72.5),
    ],
)
def test_the_priority_header_orders_relayed_mail(value: str, expected: float) -> None:
    raw = b"From: a@b.example\r\nX-Warmup-Priority: " + value.encode() + b"\r\n\r\n"
    prepared = prepare_message(
        raw,
        campaign_header="X-Warmup-Campaign",
        trace_header="X-Warmup-Id",
        received=RECEIVED,
        now=NOW,
    )
    assert isinstance(prepared, PreparedMessage)
    assert prepared.priority == expected
    assert b"priority" not in prepared.content.lower()


@pytest.mark.parametrize("value", [b"urgent", b"101", b"-3"])
def test_a_bad_priority_header_is_refused(value: bytes) -> None:
    refusal = _prepare(
        b"From: a@b.example\r\nX-Warmup-Priority: " + value + b"\r\n\r\n"
    )
    assert isinstance(refusal, Refusal)
    assert refusal.reply.startswith("550 5.6.0 Bad X-Warmup-Priority header")
