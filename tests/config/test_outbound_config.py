"""The `events:` and `webhooks:` sections of config.yaml."""

from __future__ import annotations

from datetime import timedelta

from warmup.config.reader import Context
from warmup.config.settings import Settings, parse_settings
from warmup.core.settings import EventLogSettings, WebhookSettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def _parse(text: str) -> tuple[Settings, list[str]]:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    return settings, [str(issue) for issue in ctx.issues]


def test_nothing_configured_ships_nothing() -> None:
    settings, issues = _parse("")
    assert (settings.events, settings.webhooks, issues) == (
        EventLogSettings(),
        (),
        [],
    )


def test_a_log_and_two_webhooks() -> None:
    settings, issues = _parse(
        "events: {log: /var/log/w.jsonl, rotate_bytes: 2048, keep: 3}\n"
        "webhooks:\n"
        "  - {url: 'https://tool.example/h', secret_env: HOOK_KEY,"
        " events: [bounced, complained], retry_for: 2h, batch: 10, timeout: 5s}\n"
        "  - {url: 'http://u:t@127.0.0.1:9000/webhooks/bounce', format: listmonk}\n"
    )
    assert issues == []
    assert settings.events == EventLogSettings(
        log="/var/log/w.jsonl", rotate_bytes=2048, keep=3
    )
    assert settings.webhooks == (
        WebhookSettings(
            url="https://tool.example/h",
            secret_env="HOOK_KEY",
            events=("bounced", "complained"),
            retry_for=timedelta(hours=2),
            batch=10,
            timeout=timedelta(seconds=5),
        ),
        WebhookSettings(
            url="http://u:t@127.0.0.1:9000/webhooks/bounce", format="listmonk"
        ),
    )


def test_every_problem_is_named_with_its_path() -> None:
    _, issues = _parse(
        "events: {rotate_bytes: 10, keep: 0, size: 1}\n"
        "webhooks:\n"
        "  - {url: 'ftp://x', secret_env: 'not a name', events: [opened],"
        " format: xml, retry_for: 0s}\n"
        "  - {events: [bounced]}\n"
    )
    text = "\n".join(issues)
    for expected in (
        "events.rotate_bytes: must be >= 1024, got 10",
        "events.keep: must be >= 1, got 0",
        "events.size: unknown key",
        "webhooks[0].url: expected an http:// or https:// URL, got 'ftp://x'",
        "webhooks[0].secret_env: expected an environment variable name",
        "webhooks[0].events: unknown event type 'opened'",
        "webhooks[0].format: expected one of json, listmonk, got 'xml'",
        "webhooks[0].retry_for: must be more than 0",
        "webhooks[1].url: is required",
    ):
        assert expected in text, text


def test_events_retention_defaults_to_30_days_and_is_checked() -> None:
    settings, issues = _parse("")
    assert settings.retention.events == timedelta(days=30)
    settings, issues = _parse("retention: {events: 90d}\n")
    assert (settings.retention.events, issues) == (timedelta(days=90), [])
    _, issues = _parse("retention: {events: 0s}\n")
    assert len(issues) == 1 and "retention.events" in issues[0]
