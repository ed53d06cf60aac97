"""``events:`` and ``webhooks:`` of config.yaml (where outcome events go), and
``retention:`` (how long what is no longer needed is kept)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from warmup.config.reader import Node
from warmup.core.duration import parse_duration
from warmup.core.event import EventType
from warmup.core.settings import EventLogSettings, RetentionSettings, WebhookSettings

__all__ = ["read_event_log", "read_retention", "read_webhooks"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FORMATS = ("json", "listmonk")


def read_event_log(node: Node) -> EventLogSettings:
    base = EventLogSettings()
    result = EventLogSettings(
        log=node.optional_string("log"),
        rotate_bytes=node.integer("rotate_bytes", base.rotate_bytes, minimum=1024),
        keep=node.integer("keep", base.keep, minimum=1),
    )
    node.finish()
    return result


def _url(raw: Any) -> str:
    text = str(raw).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return text


def _env_name(raw: Any) -> str:
    text = str(raw)
    if not _ENV_NAME.match(text):
        raise ValueError(f"expected an environment variable name, got {raw!r}")
    return text


def _format(raw: Any) -> str:
    if raw not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}, got {raw!r}")
    return str(raw)


def _duration_positive(raw: Any) -> Any:
    value = parse_duration(raw)
    if not value:
        raise ValueError(f"must be more than 0, got {raw!r}")
    return value


def read_webhooks(root: Node) -> tuple[WebhookSettings, ...]:
    hooks: list[WebhookSettings] = []
    known = {t.value for t in EventType}
    for node in root.children("webhooks"):
        base = WebhookSettings(url="")
        types = node.strings("events")
        for name in types:
            if name not in known:
                node.issue("events", f"unknown event type {name!r}")
        hooks.append(
            WebhookSettings(
                url=node.value("url", "", _url, required=True),
                secret_env=node.value("secret_env", None, _env_name),
                events=types,
                format=node.value("format", base.format, _format),
                retry_for=node.value("retry_for", base.retry_for, _duration_positive),
                batch=node.integer("batch", base.batch, minimum=1),
                timeout=node.value("timeout", base.timeout, _duration_positive),
            )
        )
        node.finish()
    return tuple(hooks)


def read_retention(node: Node) -> RetentionSettings:
    base = RetentionSettings()
    result = RetentionSettings(
        message_bodies=node.value(
            "message_bodies", base.message_bodies, _duration_positive
        ),
        attempts=node.value("attempts", base.attempts, _duration_positive),
        events=node.value("events", base.events, _duration_positive),
        every=node.value("every", base.every, _duration_positive),
        batch=node.integer("batch", base.batch, minimum=1),
    )
    node.finish()
    return result
