"""The ``dkim:`` and ``dns:`` sections of config.yaml (pure: values in)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from warmup.config.reader import Node
from warmup.core.auth.dkim import DEFAULT_HEADERS
from warmup.core.settings import DKIMKeySettings, DKIMSettings

__all__ = ["domain_name", "read_dkim", "read_nameservers"]

_UNSIGNED = ("hold", "send")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
_SELECTOR = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_HEADER = re.compile(r"^[!-9;-~]{1,76}$")


def domain_name(raw: Any) -> str:
    """A DNS domain name, lower-cased, without the final dot."""
    text = str(raw).strip().rstrip(".").lower()
    if not _DOMAIN.match(text):
        raise ValueError(f"not a domain name like 'example.com', got {raw!r}")
    return text


def _selector(raw: Any) -> str:
    text = str(raw).strip()
    if not _SELECTOR.match(text):
        raise ValueError(f"not a DKIM selector (DNS labels), got {raw!r}")
    return text


def _headers(node: Node) -> tuple[str, ...]:
    if not node.has("headers"):
        node.strings("headers")  # mark the key as known
        return DEFAULT_HEADERS
    names = tuple(name.lower() for name in node.strings("headers"))
    for name in names:
        if not _HEADER.match(name):
            node.issue("headers", f"not a header field name, got {name!r}")
    if "from" not in names:
        node.issue("headers", f"must include From (DKIM requires it), got {names!r}")
        return DEFAULT_HEADERS
    return names


def read_dkim(node: Node) -> DKIMSettings:
    base = DKIMSettings()
    keys: list[DKIMKeySettings] = []
    seen: set[tuple[str, str]] = set()
    for entry in node.children("keys"):
        key = DKIMKeySettings(
            domain=entry.value("domain", "", domain_name, required=True),
            selector=entry.value("selector", "", _selector, required=True),
            key=entry.string("key", required=True),
            headers=_headers(entry),
        )
        entry.finish()
        if (key.domain, key.selector) in seen:
            entry.issue(
                "selector", f"listed twice for {key.domain}, got {key.selector!r}"
            )
        seen.add((key.domain, key.selector))
        keys.append(key)
    unsigned = node.string("unsigned", base.unsigned)
    if unsigned not in _UNSIGNED:
        node.issue(
            "unsigned", f"must be one of {', '.join(_UNSIGNED)}, got {unsigned!r}"
        )
        unsigned = base.unsigned
    node.finish()
    return DKIMSettings(keys=tuple(keys), unsigned=unsigned)


def _nameserver(raw: Any) -> tuple[str, int]:
    """``host`` or ``host:port``; IPv6 as ``[::1]:53`` (or bare without a port)."""
    text = str(raw).strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"), raw)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, raw)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(f"expected an IP address or IP:port, got {raw!r}") from None


def _port(text: str, raw: Any) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {raw!r}")
    return int(text)


def read_nameservers(node: Node) -> tuple[tuple[str, int], ...]:
    """``dns.nameservers``: ``host`` or ``host:port`` (``[v6]:port``) each."""
    servers: list[tuple[str, int]] = []
    for path, raw in node.entries("nameservers", required=False):
        try:
            servers.append(_nameserver(raw))
        except ValueError as exc:
            node.ctx.issue(path, str(exc))
    return tuple(servers)
