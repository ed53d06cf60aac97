"""``config.yaml`` -> :class:`Config`, collecting every issue (pure: text in)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warmup.config.auth import read_dkim, read_nameservers
from warmup.config.outbound import read_event_log, read_retention, read_webhooks
from warmup.config.reader import Context, Node, parse_yaml
from warmup.config.reputation import read_reputation
from warmup.config.schedules import read_rates
from warmup.core.duration import parse_duration
from warmup.core.lanes.schedule import Rates, Schedule
from warmup.core.recipients.address import AddressError, parse_address
from warmup.core.recipients.unsubscribe import UnsubscribeScope
from warmup.core.settings import (
    BounceSettings,
    DeliverySettings,
    DKIMSettings,
    DMARCSettings,
    DNSSettings,
    EventLogSettings,
    MetricsSettings,
    RelaySettings,
    ReputationSettings,
    RetentionSettings,
    RetryPolicy,
    Route,
    SourceIP,
    Timeouts,
    TLSSettings,
    UnsubscribeSettings,
    WebhookSettings,
)

__all__ = ["MAX_NODE_CHARS", "Config", "Settings", "parse_settings"]

#: The claim column is varchar(128) and holds ``node:pid``.
MAX_NODE_CHARS = 120

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_STARTTLS = ("opportunistic", "required", "off")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything in config.yaml itself (schedules are read afterwards)."""

    database: str = "sqlite:///warmup.db"
    timezone: str = "UTC"
    schedules_dir: str = "schedules"
    node: str | None = None
    ips: tuple[SourceIP, ...] = ()
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    rates: Rates = field(default_factory=Rates)
    # The deprecated ``rates.deferral_rate`` (``thresholds.deferral_rate``): a cap
    # on every schedule's ``advance.max_deferral_rate`` for one release.
    deferral_cap: float | None = None
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    dkim: DKIMSettings = field(default_factory=DKIMSettings)
    dns: DNSSettings = field(default_factory=DNSSettings)
    unsubscribe: UnsubscribeSettings = field(default_factory=UnsubscribeSettings)
    dmarc: DMARCSettings = field(default_factory=DMARCSettings)
    events: EventLogSettings = field(default_factory=EventLogSettings)
    webhooks: tuple[WebhookSettings, ...] = ()
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    reputation: ReputationSettings = field(default_factory=ReputationSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Settings plus the schedules, ready for the composition root."""

    path: Path
    settings: Settings
    schedules: dict[str, Schedule]
    # One line per deprecated key the files used (file:line, old key, new key).
    warnings: tuple[str, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


def parse_settings(text: str, ctx: Context) -> Settings:
    """Parse config text; every problem is appended to ``ctx.issues``."""
    data = parse_yaml(text, ctx)
    base = Settings()
    if ctx.unreadable:
        return base  # one issue says why; the rest would only follow from it
    root = Node(ctx, "", data)
    root.alias("thresholds", "rates")
    rates, deferral_cap = _rates(root.child("rates"))
    settings = Settings(
        database=root.string("database", base.database),
        timezone=root.value("timezone", base.timezone, _timezone),
        schedules_dir=root.string("schedules", base.schedules_dir),
        node=root.value("node", None, _node_name),
        ips=_ips(root),
        delivery=_delivery(root.child("delivery")),
        bounces=_bounces(root.child("bounces")),
        relay=_relay(root.child("relay")),
        rates=rates,
        deferral_cap=deferral_cap,
        metrics=_metrics(root.child("metrics")),
        dkim=read_dkim(root.child("dkim")),
        dns=_dns(root.child("dns")),
        unsubscribe=_unsubscribe(root.child("unsubscribe")),
        dmarc=_dmarc(root.child("dmarc")),
        events=read_event_log(root.child("events")),
        webhooks=read_webhooks(root),
        retention=read_retention(root.child("retention")),
        reputation=read_reputation(root.child("reputation")),
    )
    root.finish()
    return settings


def _node_name(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected a string, got {raw!r}")
    name = str(raw).strip()
    if not name:
        raise ValueError(f"must not be empty, got {raw!r}")
    if len(name) > MAX_NODE_CHARS:
        raise ValueError(
            f"at most {MAX_NODE_CHARS} characters (claims store it with the process "
            f"id in 128), got {name[:40]!r}… ({len(name)} characters)"
        )
    return name


def _timezone(raw: Any) -> str:
    name = str(raw)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone (use an IANA name like 'Asia/Tokyo'), got {raw!r}"
        ) from None
    return name


def _ip(raw: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(raw)))
    except ValueError:
        raise ValueError(f"not an IP address, got {raw!r}") from None


def _hostname(raw: Any) -> str:
    text = str(raw)
    if not _HOSTNAME.match(text):
        raise ValueError(f"not a host name, got {raw!r}")
    return text


def _ips(root: Node) -> tuple[SourceIP, ...]:
    ips: list[SourceIP] = []
    seen: set[str] = set()
    for node in root.children("ips", required=True):
        address = node.value("address", "", _ip, required=True)
        helo = node.value("helo", "", _hostname, required=True)
        host = node.optional_string("host")
        overflow = node.strings("overflow")
        node.finish()
        if address and address in seen:
            node.issue("address", f"listed twice, got {address!r}")
        seen.add(address)
        ips.append(SourceIP(address=address, helo=helo, host=host, overflow=overflow))
    return tuple(ips)


def _host_port(default_port: int, *, lowest: int = 1) -> Any:
    def convert(raw: Any) -> tuple[str, int]:
        text = str(raw).strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, str(default_port)
        host = host.strip("[]")
        port_ok = port_text.isdigit() and lowest <= int(port_text) < 65536
        if not host or not port_ok:
            raise ValueError(f"expected host:port, got {raw!r}")
        return host, int(port_text)

    return convert


_MIN_IP_LEASE = timedelta(seconds=3)


def _delivery(node: Node) -> DeliverySettings:
    base = DeliverySettings()
    routes = {}
    for name, raw in node.items("routes"):
        try:
            host, port = _host_port(25)(raw)
        except ValueError as exc:
            node.ctx.issue(f"{node.path}.routes.{name}", str(exc))
            continue
        routes[name.lower()] = Route(host=host, port=port)
    result = DeliverySettings(
        routes=routes,
        connections_per_lane=node.integer(
            "connections_per_lane", base.connections_per_lane, minimum=1
        ),
        messages_per_connection=node.integer(
            "messages_per_connection", base.messages_per_connection, minimum=1
        ),
        timeouts=_timeouts(node.child("timeouts")),
        tls=_tls(node.child("tls")),
        retry=_retry(node.child("retry")),
        lease=node.duration("lease", base.lease),
        batch_size=node.integer("batch_size", base.batch_size, minimum=1),
        ip_lease=node.duration("ip_lease", base.ip_lease),
    )
    if result.ip_lease < _MIN_IP_LEASE:
        node.ctx.issue(
            f"{node.path}.ip_lease",
            f"must be at least 3s (renewed every third of it), got {result.ip_lease}",
        )
    node.finish()
    return result


def _timeouts(node: Node) -> Timeouts:
    base = Timeouts()
    result = Timeouts(
        connect=node.duration("connect", base.connect),
        command=node.duration("command", base.command),
        data=node.duration("data", base.data),
        dns=node.duration("dns", base.dns),
    )
    node.finish()
    return result


def _starttls(raw: Any) -> str:
    # YAML 1.1 reads an unquoted `off` as false: take it as meant.
    return "off" if raw is False else str(raw)


def _tls(node: Node) -> TLSSettings:
    base = TLSSettings()
    starttls = node.value("starttls", base.starttls, _starttls)
    if starttls not in _STARTTLS:
        node.issue(
            "starttls", f"must be one of {', '.join(_STARTTLS)}, got {starttls!r}"
        )
        starttls = base.starttls
    result = TLSSettings(starttls=starttls, verify=node.boolean("verify", base.verify))
    node.finish()
    return result


def _retry(node: Node) -> RetryPolicy:
    base = RetryPolicy()
    intervals = []
    for path, raw in node.entries("intervals", required=False):
        try:
            intervals.append(_duration_positive(raw))
        except ValueError as exc:
            node.ctx.issue(path, str(exc))
    result = RetryPolicy(
        intervals=tuple(intervals) or base.intervals,
        expire_after=node.duration("expire_after", base.expire_after),
        suppress_after_expiries=node.integer(
            "suppress_after_expiries", base.suppress_after_expiries, minimum=1
        ),
    )
    node.finish()
    return result


def _duration_positive(raw: Any) -> Any:
    delta = parse_duration(raw)
    if not delta:
        raise ValueError(f"must be longer than zero, got {raw!r}")
    return delta


def _return_path(raw: Any) -> str:
    try:
        return parse_address(str(raw)).address
    except AddressError as exc:
        raise ValueError(f"{exc}") from None


def _bounces(node: Node) -> BounceSettings:
    base = BounceSettings()
    result = BounceSettings(
        return_path=node.value("return_path", base.return_path, _return_path),
        verp_secret_env=node.string("verp_secret_env", base.verp_secret_env),
        maildir=node.optional_string("maildir"),
        poll_every=node.duration("poll_every", base.poll_every),
        # Absent or null: matching unsigned reports by recipient is off.
        recipient_lookback=node.value(
            "recipient_lookback", base.recipient_lookback, _duration_positive
        ),
        unsigned_per_host_per_hour=node.integer(
            "unsigned_per_host_per_hour", base.unsigned_per_host_per_hour, minimum=1
        ),
        unsigned_from_outside=node.boolean(
            "unsigned_from_outside", base.unsigned_from_outside
        ),
    )
    node.finish()
    return result


def _network(raw: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(raw), strict=False))
    except ValueError:
        raise ValueError(f"not a network like '10.0.0.0/8', got {raw!r}") from None


def _relay(node: Node) -> RelaySettings:
    base = RelaySettings()
    host, port = node.value(
        "listen", (base.listen_host, base.listen_port), _host_port(base.listen_port)
    )
    networks = []
    for index, raw in enumerate(node.strings("allowed_networks")):
        try:
            networks.append(_network(raw))
        except ValueError as exc:
            node.ctx.issue(f"{node.path}.allowed_networks[{index}]", str(exc))
    result = RelaySettings(
        listen_host=host,
        listen_port=port,
        enabled=node.boolean("enabled", base.enabled),
        tls_cert=node.optional_string("tls_cert"),
        tls_key=node.optional_string("tls_key"),
        users_file=node.optional_string("users_file"),
        allowed_networks=tuple(networks)
        if node.has("allowed_networks")
        else (base.allowed_networks),
        max_message_bytes=node.integer(
            "max_message_bytes", base.max_message_bytes, minimum=1024
        ),
        max_recipients=node.integer("max_recipients", base.max_recipients, minimum=1),
        campaign_header=node.value(
            "campaign_header", base.campaign_header, _header_name
        ),
        default_campaign=node.string("default_campaign", base.default_campaign),
        **_relay_limits(node, base),
    )
    node.finish()
    return result


def _header_name(raw: Any) -> str:
    text = str(raw)
    if not re.fullmatch(r"[!-9;-~]{1,76}", text):
        raise ValueError(f"not a header field name, got {raw!r}")
    return text


def _relay_limits(node: Node, base: RelaySettings) -> dict[str, Any]:
    return {
        "max_connections_per_client": node.integer(
            "max_connections_per_client", base.max_connections_per_client, minimum=1
        ),
        "messages_per_minute_per_client": node.integer(
            "messages_per_minute_per_client",
            base.messages_per_minute_per_client,
            minimum=1,
        ),
        "auth_failures_before_lockout": node.integer(
            "auth_failures_before_lockout",
            base.auth_failures_before_lockout,
            minimum=1,
        ),
        "user_auth_failures_before_lockout": node.integer(
            "user_auth_failures_before_lockout",
            base.user_auth_failures_before_lockout,
            minimum=1,
        ),
        "lockout": node.duration("lockout", base.lockout),
        "timeout": node.value("timeout", base.timeout, _duration_positive),
        "fsync": node.boolean("fsync", base.fsync),
        "forward_bounces": node.boolean("forward_bounces", base.forward_bounces),
        **_relay_ceilings(node, base),
    }


def _relay_ceilings(node: Node, base: RelaySettings) -> dict[str, Any]:
    return {
        "max_connections": node.integer(
            "max_connections", base.max_connections, minimum=1
        ),
        "max_concurrent_data": node.integer(
            "max_concurrent_data", base.max_concurrent_data, minimum=1
        ),
        "max_session_age": node.value(
            "max_session_age", base.max_session_age, _duration_positive
        ),
        "max_bounce_bytes": node.integer(
            "max_bounce_bytes", base.max_bounce_bytes, minimum=1024
        ),
    }


def _rates(node: Node) -> tuple[Rates, float | None]:
    result = read_rates(node, Rates())
    cap = node.retired_fraction("deferral_rate", "advance.max_deferral_rate")
    node.finish()
    return result, cap


def _metrics(node: Node) -> MetricsSettings:
    """``listen: host:port`` serves the endpoint; absent or null leaves it off."""
    base = MetricsSettings()
    listen = node.value("listen", None, _host_port(base.listen_port, lowest=0))
    result = MetricsSettings(
        enabled=listen is not None,
        listen_host=listen[0] if listen else base.listen_host,
        listen_port=listen[1] if listen else base.listen_port,
        refresh=node.value("refresh", base.refresh, _duration_positive),
    )
    node.finish()
    return result


def _base_url(raw: Any) -> str:
    text = str(raw).strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    host = rest.partition("/")[0]
    if not sep or scheme not in ("https", "http") or not host or " " in text:
        raise ValueError(f"expected a URL like 'https://mail.example.com', got {raw!r}")
    return text


def _choice(*choices: str) -> Any:
    def convert(raw: Any) -> str:
        if str(raw) not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return str(raw)

    return convert


def _unsubscribe(node: Node) -> UnsubscribeSettings:
    """``base_url`` puts the links in mail; ``listen`` serves them."""
    base = UnsubscribeSettings()
    listen = node.value("listen", None, _host_port(base.listen_port, lowest=0))
    result = UnsubscribeSettings(
        base_url=node.value("base_url", None, _base_url),
        listen_host=listen[0] if listen else None,
        listen_port=listen[1] if listen else base.listen_port,
        relayed=node.value("relayed", base.relayed, _choice("keep", "add")),
        scope=UnsubscribeScope(
            node.value("scope", base.scope.value, _choice("global", "campaign"))
        ),
    )
    if result.listen_host is not None and result.base_url is None:
        node.issue("base_url", "required with unsubscribe.listen (the public URL)")
    node.finish()
    return result


def _dmarc(node: Node) -> DMARCSettings:
    base = DMARCSettings()
    result = DMARCSettings(
        min_messages=node.integer("min_messages", base.min_messages, minimum=1),
        min_pass_rate=node.fraction("min_pass_rate", base.min_pass_rate),
        max_report_bytes=node.integer(
            "max_report_bytes", base.max_report_bytes, minimum=1024
        ),
    )
    node.finish()
    return result


def _dns(node: Node) -> DNSSettings:
    """``dns:``: the resolvers every lookup goes to, and how answers are weighed."""
    base = DNSSettings()
    result = DNSSettings(
        nameservers=read_nameservers(node),
        confirm_after=node.duration("confirm_after", base.confirm_after),
        recheck_after=node.value(
            "recheck_after", base.recheck_after, _duration_positive
        ),
    )
    node.finish()
    return result
