"""The `metrics:` section of config.yaml."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warmup.config.reader import Context
from warmup.config.settings import parse_settings
from warmup.core.settings import MetricsSettings

BASE = "ips:\n  - {address: 127.0.0.2, helo: a.example.com}\n"


def _metrics(text: str) -> tuple[MetricsSettings, list[str]]:
    ctx = Context(file="config.yaml")
    settings = parse_settings(BASE + text, ctx)
    return settings.metrics, [str(issue) for issue in ctx.issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", MetricsSettings(enabled=False)),
        ("metrics: null\n", MetricsSettings(enabled=False)),
        ("metrics: {listen: null}\n", MetricsSettings(enabled=False)),
        (
            "metrics: {listen: 127.0.0.1:9108}\n",
            MetricsSettings(enabled=True, listen_host="127.0.0.1", listen_port=9108),
        ),
        (
            "metrics: {listen: '[::1]:0', refresh: 2s}\n",
            MetricsSettings(
                enabled=True,
                listen_host="::1",
                listen_port=0,
                refresh=timedelta(seconds=2),
            ),
        ),
        (
            "metrics: {listen: 0.0.0.0}\n",
            MetricsSettings(enabled=True, listen_host="0.0.0.0", listen_port=9108),
        ),
    ],
)
def test_metrics_listen_turns_the_endpoint_on(
    text: str, expected: MetricsSettings
) -> None:
    assert _metrics(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics: {listen: 'host:99999'}\n", "metrics.listen: expected host:port"),
        ("metrics: {listen: ':9108'}\n", "metrics.listen: expected host:port"),
        ("metrics: {listen: a:1, refresh: 0s}\n", "metrics.refresh: must be longer"),
        ("metrics: {listen: a:1, port: 3}\n", "metrics.port: unknown key"),
    ],
)
def test_bad_metrics_settings_are_reported(text: str, message: str) -> None:
    _, issues = _metrics(text)
    assert any(message in issue for issue in issues), issues
