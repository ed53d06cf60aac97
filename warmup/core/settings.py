"""Value types for the daemon's settings, built by :mod:`warmup.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from warmup.core.recipients.unsubscribe import UnsubscribeScope

__all__ = [
    "BounceSettings",
    "DKIMKeySettings",
    "DKIMSettings",
    "DMARCSettings",
    "DNSSettings",
    "DeliverySettings",
    "EventLogSettings",
    "MetricsSettings",
    "PostmasterSettings",
    "RelaySettings",
    "ReputationSettings",
    "RetentionSettings",
    "RetryPolicy",
    "Route",
    "SNDSSettings",
    "SourceIP",
    "TLSSettings",
    "Timeouts",
    "UnsubscribeSettings",
    "WebhookSettings",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceIP:
    """A local address outgoing connections bind to, with its HELO name."""

    address: str
    helo: str
    # The node (host name) that owns this IP; None means whichever node runs it.
    host: str | None = None
    # ISPs for which this IP is already warm and takes overflow; "*" for all.
    overflow: tuple[str, ...] = ()

    def overflows_for(self, isp: str) -> bool:
        return "*" in self.overflow or isp in self.overflow


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A fixed next hop used instead of MX for an ISP name or a recipient domain."""

    host: str
    port: int = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    connect: timedelta = timedelta(seconds=30)
    command: timedelta = timedelta(seconds=60)
    data: timedelta = timedelta(seconds=180)
    dns: timedelta = timedelta(seconds=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSSettings:
    # "opportunistic": STARTTLS when offered; "required": refuse plain text; "off".
    starttls: str = "opportunistic"
    verify: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Soft failures are retried after these intervals (the last repeats)."""

    intervals: tuple[timedelta, ...] = (
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
    )
    expire_after: timedelta = timedelta(hours=72)
    suppress_after_expiries: int = 3

    def interval(self, attempt: int) -> timedelta:
        """Delay after the ``attempt``-th failed attempt (1-based)."""
        index = min(max(attempt, 1), len(self.intervals)) - 1
        return self.intervals[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySettings:
    routes: dict[str, Route] = field(default_factory=dict)
    connections_per_lane: int = 2
    messages_per_connection: int = 100
    timeouts: Timeouts = field(default_factory=Timeouts)
    tls: TLSSettings = field(default_factory=TLSSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease: timedelta = timedelta(minutes=5)
    batch_size: int = 50
    # How long a process holds its source IPs (and its claims) without a
    # heartbeat; renewed every third of it (warmup.app.ownership).
    ip_lease: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class BounceSettings:
    return_path: str = "bounces@bounce.example.com"
    verp_secret_env: str = "WARMUP_VERP_SECRET"
    maildir: str | None = None
    poll_every: timedelta = timedelta(minutes=1)
    # How far back a report without a signed token may be matched to a send by
    # its recipient; None (the default): only signed tokens count.
    recipient_lookback: timedelta | None = None
    # Unsigned reports that may look a send up, per reporting host and hour.
    unsigned_per_host_per_hour: int = 10
    # Whether unsigned reports from relay clients outside allowed_networks may.
    unsigned_from_outside: bool = False

    @property
    def domain(self) -> str:
        return self.return_path.rpartition("@")[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 2587
    # Off unless the config turns it on: no port is opened by surprise.
    enabled: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    users_file: str | None = None
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8",)
    max_message_bytes: int = 25 * 1024 * 1024
    max_recipients: int = 1000
    campaign_header: str = "X-Warmup-Campaign"
    # Campaign of a submission that names none (no header, no AUTH user).
    default_campaign: str = "relay"
    max_connections_per_client: int = 20
    messages_per_minute_per_client: int = 6000
    auth_failures_before_lockout: int = 5
    # The same per user name, whatever the client (many addresses, one account).
    user_auth_failures_before_lockout: int = 10
    lockout: timedelta = timedelta(minutes=15)
    # Idle time allowed per command, and for the whole message after DATA.
    timeout: timedelta = timedelta(minutes=5)
    # Sessions open at once, from all clients (421 beyond).
    max_connections: int = 256
    # Messages being received (after DATA) at once; more wait, then get 451.
    max_concurrent_data: int = 20
    # A session older than this is closed at its next command (421).
    max_session_age: timedelta = timedelta(minutes=30)
    # Size limit of a message from a client that may not relay (outside the
    # allowed networks, no AUTH): all it may send is a report to the bounce domain.
    max_bounce_bytes: int = 1024 * 1024
    # SQLite: fsync each accepted message (survives power loss, not only a crash).
    fsync: bool = True
    # A delivery report (RFC 3464) to the client's envelope sender for each hard
    # bounce or expiry of relayed mail (warmup.app.forward).
    forward_bounces: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    """The Prometheus endpoint of `warmup run`; ``listen_port`` 0 picks a free port."""

    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = 9108
    refresh: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class DKIMKeySettings:
    """One ``dkim.keys`` entry: ``key`` is the path of a PEM private key."""

    domain: str
    selector: str
    key: str
    headers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DKIMSettings:
    """DKIM signing; no keys means signing is off (and nothing is held)."""

    keys: tuple[DKIMKeySettings, ...] = ()
    # A message whose From domain no key covers: "hold" (wait) or "send" unsigned.
    unsigned: str = "hold"


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSSettings:
    """Every DNS lookup warmup makes; no nameservers: the system's resolver."""

    nameservers: tuple[tuple[str, int], ...] = ()
    # NXDOMAIN / Null MX must be seen by 2+ lookups this far apart to kill a domain
    # (core/recipients/dns_evidence.py).
    confirm_after: timedelta = timedelta(hours=1)
    # A domain suppressed on DNS evidence is looked up again after this long.
    recheck_after: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeSettings:
    """One-click unsubscribe: the links put in mail and the endpoint serving them.

    ``base_url`` None: no ``List-Unsubscribe`` is added; ``listen_host`` None: no
    HTTP endpoint (another process, or none, serves ``base_url``)."""

    base_url: str | None = None
    listen_host: str | None = None
    listen_port: int = 8025
    # "keep": relayed mail goes out with (or without) the client's own header;
    # "add": relayed mail without one gets ours.
    relayed: str = "keep"
    scope: UnsubscribeScope = UnsubscribeScope.global_

    @property
    def add_to_relayed(self) -> bool:
        return self.relayed == "add"


@dataclass(frozen=True, slots=True, kw_only=True)
class DMARCSettings:
    """DMARC aggregate reports: when an IP's authentication counts as failing."""

    # A day is judged once the reports hold this many messages from the IP ...
    min_messages: int = 100
    # ... and fails when fewer than this share of them pass DMARC.
    min_pass_rate: float = 0.98
    # Largest report accepted after decompression (bytes).
    max_report_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLogSettings:
    """The accounting log: outcome events as JSON lines, rotated by size."""

    log: str | None = None  # None: no log
    rotate_bytes: int = 100_000_000
    keep: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """One endpoint that gets outcome events by HTTP POST (see adapters.webhook)."""

    url: str
    secret_env: str | None = None  # HMAC-SHA256 key; None: unsigned
    events: tuple[str, ...] = ()  # event types; empty: every type
    format: str = "json"  # "json" | "listmonk"
    retry_for: timedelta = timedelta(hours=24)
    batch: int = 100
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionSettings:
    """How long what is no longer needed is kept; pruned every ``every`` by
    `warmup run`, at most ``batch`` rows per statement."""

    message_bodies: timedelta = timedelta(days=7)  # after its last recipient is final
    attempts: timedelta = timedelta(days=180)
    # Outcome events in the outbox, once every consumer shipped them (or gave
    # them up: past its retry_for).
    events: timedelta = timedelta(days=30)
    every: timedelta = timedelta(hours=1)
    batch: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class PostmasterSettings:
    """Google Postmaster Tools (API v1); off while ``credentials_file`` is None."""

    # A file holding an OAuth 2.0 access token (scope postmaster.readonly), read
    # at every fetch so an outside job can refresh it.
    credentials_file: str | None = None
    domains: tuple[str, ...] = ()
    endpoint: str = "https://gmailpostmastertools.googleapis.com"

    @property
    def enabled(self) -> bool:
        return self.credentials_file is not None and bool(self.domains)


@dataclass(frozen=True, slots=True, kw_only=True)
class SNDSSettings:
    """Microsoft SNDS automated data access; off while ``key_env`` is None."""

    key_env: str | None = None
    endpoint: str = "https://sendersupport.olc.protection.outlook.com/snds/data.aspx"

    @property
    def enabled(self) -> bool:
        return self.key_env is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReputationSettings:
    """The ISPs' own reputation data, fetched daily (core.lanes.reputation)."""

    google_postmaster: PostmasterSettings = field(default_factory=PostmasterSettings)
    snds: SNDSSettings = field(default_factory=SNDSSettings)
    # Each HTTP request gives up after this long.
    timeout: timedelta = timedelta(seconds=30)

    @property
    def enabled(self) -> bool:
        return self.google_postmaster.enabled or self.snds.enabled
