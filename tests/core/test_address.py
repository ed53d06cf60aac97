from __future__ import annotations

import pytest

from warmup.core.recipients.address import (
    AddressError,
    normalize_suppression,
    parse_address,
)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("User@Example.COM", "User@example.com"),
        ("  a.b+tag@sub.example.co.jp ", "a.b+tag@sub.example.co.jp"),
        ('"odd..quoted"@example.com', '"odd..quoted"@example.com'),
        ("x@example.com.", "x@example.com"),
        ("ユーザー@例え.jp", "ユーザー@例え.jp"),
    ],
)
def test_valid_addresses_are_normalised(text: str, normalised: str) -> None:
    assert parse_address(text).address == normalised


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("no-at-sign", "local@domain"),
        ("@example.com", "local@domain"),
        ("a@localhost", "at least one dot"),
        ("a b@example.com", "local part"),
        ("a@exa mple.com", "invalid domain"),
        (".a@example.com", "dots"),
        ("a..b@example.com", "dots"),
        ("a@[127.0.0.1]", "literals"),
        ("a@1.2.3.4", "numeric"),
        ("a@-bad.com", "invalid domain"),
        ("a@example.com\r\nBcc: x@y.z", "line break"),
        ("x" * 65 + "@example.com", "too long"),
    ],
)
def test_invalid_addresses_say_why(text: str, reason: str) -> None:
    with pytest.raises(AddressError, match=reason):
        parse_address(text)


def test_domain_suppressions() -> None:
    assert normalize_suppression("@Example.COM") == "@example.com"
    assert normalize_suppression("A@Example.com") == "A@example.com"
    with pytest.raises(AddressError):
        normalize_suppression("@")
