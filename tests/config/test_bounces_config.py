"""The `bounces:` section: matching unsigned reports by recipient can be turned off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warmup.config.reader import Context
from warmup.config.settings import parse_settings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", timedelta(days=7)),
        ("bounces: {return_path: b@bounce.example.com}\n", timedelta(days=7)),
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
