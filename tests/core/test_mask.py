"""Masking recipient addresses for logs and reports."""

from __future__ import annotations

import pytest

from warmup.core.recipients.address import mask_address, mask_addresses


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("john.doe@example.com", "j***@example.com"),
        ("a@example.com", "a***@example.com"),
        ('"odd user"@example.com', '"***@example.com'),
        ("@example.com", "***@example.com"),
        ("no-at-sign", "***"),
    ],
)
def test_mask_address_keeps_the_domain_and_one_character(
    address: str, masked: str
) -> None:
    assert mask_address(address) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "550 5.1.1 <john.doe@gmail.com>: Recipient address rejected",
            "550 5.1.1 <j***@gmail.com>: Recipient address rejected",
        ),
        ("to 'ann+x@Example.COM' and bob@b.example.org", None),
        ('"odd user"@example.com said no', '"***@example.com said no'),
        ("jürgen@bücher.de", "j***@bücher.de"),
        ("421 4.7.28 [127.0.0.2] rate limited", None),
        ("an @ sign, user@localhost, and no address", None),
    ],
)
def test_mask_addresses_masks_every_address_in_text(
    text: str, masked: str | None
) -> None:
    if masked is None:
        expected = text.replace("ann+x@", "a***@").replace("bob@", "b***@")
    else:
        expected = masked
    assert mask_addresses(text) == expected
    assert mask_addresses(expected) == expected  # idempotent
