"""The `reputation:` section of config.yaml: off by default, every bad value
named with its dotted path."""

from __future__ import annotations

from datetime import timedelta

from warmup.config.reader import Context
from warmup.config.settings import Settings, parse_settings
from warmup.core.settings import PostmasterSettings, ReputationSettings, SNDSSettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def _parse(text: str) -> tuple[Settings, list[str]]:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    return settings, [str(issue) for issue in ctx.issues]


def test_absent_means_off() -> None:
    settings, issues = _parse("")
    assert issues == []
    assert settings.reputation == ReputationSettings()
    assert not settings.reputation.enabled


def test_both_feeds_read() -> None:
    settings, issues = _parse(
        "reputation:\n"
        "  google_postmaster:\n"
        "    credentials_file: /etc/warmup/token\n"
        "    domains: [Shop.Example., news.shop.example, shop.example]\n"
        "    endpoint: http://127.0.0.1:9/\n"
        "  snds: {key_env: WARMUP_SNDS_KEY}\n"
        "  timeout: 10s\n"
    )
    assert issues == []
    assert settings.reputation == ReputationSettings(
        google_postmaster=PostmasterSettings(
            credentials_file="/etc/warmup/token",
            domains=("shop.example", "news.shop.example"),
            endpoint="http://127.0.0.1:9",
        ),
        snds=SNDSSettings(key_env="WARMUP_SNDS_KEY"),
        timeout=timedelta(seconds=10),
    )
    assert settings.reputation.google_postmaster.enabled
    assert settings.reputation.snds.enabled


def test_every_bad_value_is_reported_with_its_path() -> None:
    _, issues = _parse(
        "reputation:\n"
        "  google_postmaster:\n"
        "    credentials_file: token.txt\n"
        "    domains: [not_a_domain]\n"
        "    endpoint: ftp://x\n"
        "  snds: {key_env: 'SNDS KEY', endpoint: nowhere, keyenv: x}\n"
        "  timeout: 0s\n"
    )
    text = "\n".join(issues)
    assert "reputation.google_postmaster.domains[0]: not a domain name" in text
    assert "reputation.google_postmaster.endpoint: expected an http(s) URL" in text
    assert "reputation.snds.key_env: expected an environment variable name" in text
    assert "reputation.snds.endpoint: expected an http(s) URL" in text
    assert "reputation.snds.keyenv: unknown key (did you mean 'key_env'?)" in text
    assert "reputation.timeout: must be positive, got '0s'" in text
    # No domain left: a credentials file without domains reads nothing.
    assert "reputation.google_postmaster.domains: list the domains" in text
