"""One-click unsubscribe tokens and headers (pure)."""

from __future__ import annotations

import pytest

from warmup.core.bounces.verp import VERPToken, encode_verp
from warmup.core.recipients.unsubscribe import (
    UnsubscribeLinks,
    UnsubscribeToken,
    decode_unsubscribe,
    encode_unsubscribe,
    list_headers,
    mailto_token,
)

TOKEN = UnsubscribeToken(recipient_id=12, campaign_id=3)
LINKS = UnsubscribeLinks(base_url="https://m.example", mail_domain="bounce.example")


def test_round_trip_and_case_insensitive_mac() -> None:
    text = encode_unsubscribe(TOKEN, secret=b"k")
    assert text.startswith("u12-c3-") and len(text.rpartition("-")[2]) == 16
    assert decode_unsubscribe(text, secret=b"k") == TOKEN
    assert (
        decode_unsubscribe(
            text.upper().replace("U", "u", 1).replace("-C", "-c"), secret=b"k"
        )
        == TOKEN
    )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("u12", "u13"),
        lambda t: t.replace("c3", "c4"),
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
        lambda t: t + "0",
        lambda t: t.replace("-", "", 1),
        lambda t: "",
        lambda t: t.replace("u12", "u\uff11\uff12"),  # non-ASCII digits
    ],
)
def test_tampered_tokens_do_not_decode(mutate: object) -> None:
    text = encode_unsubscribe(TOKEN, secret=b"k")
    assert callable(mutate)
    assert decode_unsubscribe(mutate(text), secret=b"k") is None


def test_other_secret_and_verp_tokens_do_not_decode() -> None:
    text = encode_unsubscribe(TOKEN, secret=b"k")
    assert decode_unsubscribe(text, secret=b"other") is None
    verp = encode_verp(
        VERPToken(recipient_id=12, attempt=3), return_path="b@x", secret=b"k"
    )
    assert (
        decode_unsubscribe(verp.partition("+")[2].partition("@")[0], secret=b"k")
        is None
    )


def test_list_headers_name_both_links() -> None:
    text = encode_unsubscribe(TOKEN, secret=b"k")
    assert list_headers(TOKEN, LINKS, secret=b"k") == [
        (
            "List-Unsubscribe",
            f"<https://m.example/u/{text}>, <mailto:unsubscribe+{text}@bounce.example>",
        ),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def test_links_refuse_trailing_slash() -> None:
    with pytest.raises(ValueError, match="must not end"):
        UnsubscribeLinks(base_url="https://m.example/", mail_domain="b")


def test_mailto_token_finds_our_address_only() -> None:
    found = mailto_token(
        ["ann@x.example", "<Unsubscribe+u1-c2-ab@BOUNCE.example>"],
        mail_domain="bounce.example",
    )
    assert found == "u1-c2-ab"
    assert (
        mailto_token(["unsubscribe+t@other.example"], mail_domain="bounce.example")
        is None
    )
    assert (
        mailto_token(["bounces+t@bounce.example"], mail_domain="bounce.example") is None
    )
    assert mailto_token([], mail_domain="bounce.example") is None
