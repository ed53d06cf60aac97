"""The `unsubscribe:` section of config.yaml."""

from __future__ import annotations

import pytest

from warmup.config.reader import Context
from warmup.config.settings import parse_settings
from warmup.core.recipients.unsubscribe import UnsubscribeScope
from warmup.core.settings import UnsubscribeSettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def _read(text: str) -> tuple[UnsubscribeSettings, list[str]]:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    return settings.unsubscribe, [str(issue) for issue in ctx.issues]


def test_absent_means_no_links_and_no_endpoint() -> None:
    assert _read("") == (UnsubscribeSettings(), [])


def test_full_section() -> None:
    text = (
        "unsubscribe: {base_url: 'https://m.example.com/', listen: '127.0.0.1:0',"
        " relayed: add, scope: campaign}\n"
    )
    assert _read(text) == (
        UnsubscribeSettings(
            base_url="https://m.example.com",
            listen_host="127.0.0.1",
            listen_port=0,
            relayed="add",
            scope=UnsubscribeScope.campaign,
        ),
        [],
    )


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        ("{base_url: 'ftp://x'}", "unsubscribe.base_url: expected a URL"),
        ("{base_url: 'https://'}", "unsubscribe.base_url: expected a URL"),
        ("{listen: 'x:99999'}", "unsubscribe.listen: expected host:port"),
        ("{listen: '127.0.0.1:8025'}", "unsubscribe.base_url: required with"),
        ("{relayed: drop}", "unsubscribe.relayed: expected one of keep, add"),
        ("{scope: all}", "unsubscribe.scope: expected one of global, campaign"),
        ("{colour: red}", "unsubscribe.colour"),
    ],
)
def test_bad_values_are_named(text: str, issue: str) -> None:
    _, issues = _read(f"unsubscribe: {text}\n")
    assert any(issue in found for found in issues), issues


def test_relayed_add_is_a_switch() -> None:
    assert UnsubscribeSettings(relayed="add").add_to_relayed
    assert not UnsubscribeSettings().add_to_relayed
