"""Suppression entries and lookups (core/recipients/suppression.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warmup.core.model import SuppressionKind
from warmup.core.recipients.address import AddressError
from warmup.core.recipients.suppression import (
    bounce_target,
    is_suppressed,
    lookup_keys,
    make_suppression,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_lookup_keys_cover_each_address_and_its_domain() -> None:
    assert lookup_keys(["ann@a.test", "bob@a.test", "cy@b.test"]) == {
        "ann@a.test",
        "bob@a.test",
        "cy@b.test",
        "@a.test",
        "@b.test",
    }


@pytest.mark.parametrize(
    ("address", "suppressed"),
    [
        ("ann@a.test", True),  # listed itself
        ("bob@dead.test", True),  # its whole domain is listed
        ("bob@a.test", False),
        ("ann@a.test.other", False),  # a longer domain is another domain
    ],
)
def test_an_address_is_suppressed_by_itself_or_its_domain(
    address: str, suppressed: bool
) -> None:
    keys = {"ann@a.test", "@dead.test"}
    assert is_suppressed(address, keys) is suppressed


def test_an_unknown_host_suppresses_the_domain_only_when_allowed() -> None:
    assert bounce_target("ann@a.test", "a.test", "hostunknown") == "@a.test"
    assert bounce_target("ann@a.test", "a.test", "userunknown") == "ann@a.test"
    assert (
        bounce_target("ann@a.test", "a.test", "hostunknown", whole_domain=False)
        == "ann@a.test"
    )


def test_a_suppression_is_normalised_and_typed() -> None:
    entry = make_suppression("@A.Test", reason="hard", source="smtp", now=NOW)
    assert (entry.address, entry.kind) == ("@a.test", SuppressionKind.domain)
    with pytest.raises(AddressError):
        make_suppression("nobody", reason="hard", source="smtp", now=NOW)
