"""The ``reputation:`` section of config.yaml (pure: values in)."""

from __future__ import annotations

import re
from typing import Any

from warmup.config.auth import domain_name
from warmup.config.reader import Node
from warmup.core.duration import parse_duration
from warmup.core.settings import PostmasterSettings, ReputationSettings, SNDSSettings

__all__ = ["read_reputation"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _endpoint(raw: Any) -> str:
    text = str(raw).strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("https", "http") or not rest or " " in text:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return text


def _env_name(raw: Any) -> str:
    text = str(raw).strip()
    if not _ENV_NAME.match(text):
        raise ValueError(f"expected an environment variable name, got {raw!r}")
    return text


def _postmaster(node: Node) -> PostmasterSettings:
    base = PostmasterSettings()
    domains: list[str] = []
    for path, raw in node.entries("domains", required=False):
        try:
            domains.append(domain_name(raw))
        except ValueError as exc:
            node.ctx.issue(path, str(exc))
    result = PostmasterSettings(
        credentials_file=node.optional_string("credentials_file"),
        domains=tuple(dict.fromkeys(domains)),
        endpoint=node.value("endpoint", base.endpoint, _endpoint),
    )
    if result.credentials_file is not None and not result.domains:
        node.issue("domains", "list the domains to read with credentials_file set")
    node.finish()
    return result


def _snds(node: Node) -> SNDSSettings:
    base = SNDSSettings()
    result = SNDSSettings(
        key_env=node.value("key_env", None, _env_name),
        endpoint=node.value("endpoint", base.endpoint, _endpoint),
    )
    node.finish()
    return result


def read_reputation(node: Node) -> ReputationSettings:
    """``reputation:``: Google Postmaster Tools and Microsoft SNDS, both off
    until their credentials are named."""
    base = ReputationSettings()
    result = ReputationSettings(
        google_postmaster=_postmaster(node.child("google_postmaster")),
        snds=_snds(node.child("snds")),
        timeout=node.value("timeout", base.timeout, _positive_duration),
    )
    node.finish()
    return result


def _positive_duration(raw: Any) -> Any:
    value = parse_duration(raw)
    if value.total_seconds() <= 0:
        raise ValueError(f"must be positive, got {raw!r}")
    return value
