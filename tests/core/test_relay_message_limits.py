"""Bounds on a relayed message's header section (issue 12, item 3)."""

from __future__ import annotations

from warmup.core.relay.message import (
    MAX_HEADER_BYTES,
    PreparedMessage,
    header_names,
    prepare_message,
)
from warmup.core.relay.policy import Refusal


def _prepare(raw: bytes) -> PreparedMessage | Refusal:
    return prepare_message(
        raw, campaign_header="X-C", trace_header="X-T", received="Received: x\r\n"
    )


def test_a_header_section_over_the_limit_is_refused() -> None:
    many = b"".join(b"X-%d: %s\r\n" % (n, b"v" * 1000) for n in range(1100))
    assert len(many) > MAX_HEADER_BYTES
    refused = _prepare(many + b"\r\nbody")
    assert refused == Refusal(
        552, "5.3.4", f"Header section longer than {MAX_HEADER_BYTES} bytes"
    )


def test_a_field_of_many_folds_is_read_whole() -> None:
    folds = b"\r\n x" * 10_000
    prepared = _prepare(b"Subject: a" + folds + b"\r\nFrom: f@x.example\r\n\r\nb")
    assert isinstance(prepared, PreparedMessage)
    assert header_names(prepared.content) == {"received", "subject", "from"}
    assert prepared.content.endswith(folds + b"\r\nFrom: f@x.example\r\n\r\nb")
