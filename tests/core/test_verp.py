"""VERP return paths (core/bounces/verp.py): signed, and anything else is no token."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from warmup.core.bounces.verp import VERPToken, decode_verp, encode_verp

SECRET = b"k"
TOKEN = VERPToken(recipient_id=12, attempt=3)
ADDRESS = encode_verp(TOKEN, return_path="bounces@bounce.test", secret=SECRET)
MAC = ADDRESS.partition("@")[0].rpartition("-")[2]


def _signed(body: str) -> str:
    """A tag with ``body`` and a correct MAC (what only a key holder could write)."""
    mac = hmac.new(SECRET, body.encode(), hashlib.sha256).hexdigest()[: len(MAC)]
    return f"bounces+{body}-{mac}@bounce.test"


def test_round_trip() -> None:
    assert ADDRESS.startswith("bounces+r12-a3-") and ADDRESS.endswith("@bounce.test")
    assert decode_verp(ADDRESS, secret=SECRET) == TOKEN
    assert decode_verp(f" <{ADDRESS.upper()}> ", secret=SECRET) is None  # r/a case
    assert decode_verp(f" <{ADDRESS}> ", secret=SECRET) == TOKEN


@pytest.mark.parametrize(
    "address",
    [
        "bounces@bounce.test",  # no tag
        "bounces+r12-a3@bounce.test",  # no MAC
        "bounces+r12-a3-00-x@bounce.test",  # four parts
        ADDRESS.replace("r12", "r13"),  # MAC does not match
    ],
)
def test_malformed_or_forged_is_no_token(address: str) -> None:
    assert decode_verp(address, secret=SECRET) is None


def test_another_secret_does_not_verify() -> None:
    assert decode_verp(ADDRESS, secret=b"other") is None


@pytest.mark.parametrize(
    "body",
    [
        "x12-a3",  # signed, but not r…
        "r12-b3",  # signed, but not a…
        "r1x-a3",  # signed, but not digits
        "r12-a٣",  # non-ASCII digits (raised UnicodeEncodeError before)
        "r12-aé",
    ],
)
def test_a_signed_tag_with_a_bad_body_is_no_token(body: str) -> None:
    assert decode_verp(_signed(body), secret=SECRET) is None


@pytest.mark.parametrize("mac", ["é" * 8, "٣" * 8])
def test_a_non_ascii_mac_is_no_token(mac: str) -> None:
    """hmac.compare_digest refuses non-ASCII str: it must never see one."""
    assert decode_verp(f"bounces+r12-a3-{mac}@bounce.test", secret=SECRET) is None
