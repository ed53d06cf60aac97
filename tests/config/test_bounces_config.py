"""The `bounces:` section: unsigned reports are matched by recipient only when
configured (issue 12: one forged mail must not suppress a list)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warmup.config.reader import Context
from warmup.config.settings import parse_settings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("bounces: {return_path: b@bounce.example.com}\n", None),
        ("bounces: {recipient_lookback: 2d}\n", timedelta(days=2)),
        ("bounces: {recipient_lookback: null}\n", None),
    ],
)
def test_recipient_lookback(text: str, expected: timedelta | None) -> None:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    assert ctx.issues == []
    assert settings.bounces.recipient_lookback == expected


def test_a_bad_lookback_is_reported_with_its_path() -> None:
    ctx = Context(file="config.yaml")
    parse_settings(BASE + "bounces: {recipient_lookback: soon}\n", ctx)
    (issue,) = ctx.issues
    assert "bounces.recipient_lookback" in str(issue)


def test_unsigned_reports_keys_and_their_defaults() -> None:
    ctx = Context(file="config.yaml")
    default = parse_settings(BASE, ctx).bounces
    assert (default.unsigned_per_host_per_hour, default.unsigned_from_outside) == (
        10,
        False,
    )
    text = "bounces: {unsigned_per_host_per_hour: 3, unsigned_from_outside: true}\n"
    bounces = parse_settings(BASE + text, ctx).bounces
    assert ctx.issues == []
    assert (bounces.unsigned_per_host_per_hour, bounces.unsigned_from_outside) == (
        3,
        True,
    )
    parse_settings(BASE + "bounces: {unsigned_per_host_per_hour: 0}\n", ctx)
    (issue,) = ctx.issues
    assert "bounces.unsigned_per_host_per_hour" in str(issue)
