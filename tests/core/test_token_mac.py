"""VERP tokens and the shared token signature (pure; the unsubscribe token uses it)."""

from __future__ import annotations

import pytest

from warmup.core.bounces.verp import (
    VERPToken,
    decode_verp,
    encode_verp,
    mac_matches,
    token_mac,
)

SIGNED = encode_verp(
    VERPToken(recipient_id=12, attempt=3), return_path="b@x.test", secret=b"k"
)


def test_round_trip() -> None:
    assert SIGNED.startswith("b+r12-a3-") and SIGNED.endswith("@x.test")
    assert decode_verp(f"<{SIGNED}>", secret=b"k") == VERPToken(
        recipient_id=12, attempt=3
    )


@pytest.mark.parametrize(
    "address",
    [
        "b@x.test",  # no tag
        "b+r12-a3@x.test",  # no MAC
        "b+r\u00e912-a3-0123456789@x.test",  # non-ASCII: refused, never a crash
        f"b+x12-a3-{token_mac(b'k', 'x12-a3')}@x.test",  # signed, wrong tags
        f"b+r1x-a3-{token_mac(b'k', 'r1x-a3')}@x.test",  # signed, not a number
    ],
)
def test_what_does_not_decode(address: str) -> None:
    assert decode_verp(address, secret=b"k") is None


def test_mac_matches_is_case_insensitive_and_ascii_only() -> None:
    mac = token_mac(b"k", "body", chars=16)
    assert len(mac) == 16
    assert mac_matches(b"k", "body", mac.upper(), chars=16)
    assert not mac_matches(b"k", "body", mac, chars=10)
    assert not mac_matches(b"k", "b\u00f6dy", mac, chars=16)
    assert not mac_matches(b"k", "body", "\u00e9" * 16, chars=16)
