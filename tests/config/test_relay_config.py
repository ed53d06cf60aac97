"""The `relay:` ceilings and AUTH keys of issue 12: defaults, values, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warmup.config.reader import Context
from warmup.config.settings import parse_settings
from warmup.core.settings import RelaySettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def test_defaults() -> None:
    ctx = Context(file="config.yaml")
    relay = parse_settings(BASE, ctx).relay
    assert ctx.issues == []
    assert relay == RelaySettings()
    assert (
        relay.max_connections,
        relay.max_concurrent_data,
        relay.max_session_age,
        relay.max_bounce_bytes,
        relay.user_auth_failures_before_lockout,
    ) == (256, 20, timedelta(minutes=30), 1024 * 1024, 10)


def test_values() -> None:
    ctx = Context(file="config.yaml")
    text = (
        "relay: {max_connections: 50, max_concurrent_data: 4, max_session_age: 1h,"
        " max_bounce_bytes: 65536, user_auth_failures_before_lockout: 3}\n"
    )
    relay = parse_settings(BASE + text, ctx).relay
    assert ctx.issues == []
    assert (
        relay.max_connections,
        relay.max_concurrent_data,
        relay.max_session_age,
        relay.max_bounce_bytes,
        relay.user_auth_failures_before_lockout,
    ) == (50, 4, timedelta(hours=1), 65536, 3)


@pytest.mark.parametrize(
    "entry",
    [
        "max_connections: 0",
        "max_concurrent_data: 0",
        "max_session_age: 0s",
        "max_session_age: soon",
        "max_bounce_bytes: 10",
        "user_auth_failures_before_lockout: 0",
    ],
)
def test_bad_values_name_their_key(entry: str) -> None:
    ctx = Context(file="config.yaml")
    parse_settings(BASE + f"relay: {{{entry}}}\n", ctx)
    (issue,) = ctx.issues
    assert f"relay.{entry.partition(':')[0]}" in str(issue)
