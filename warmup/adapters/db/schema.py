"""The database schema (SQLAlchemy Core). Alembic migrations must match it.

All instants are stored as UTC; :class:`UTCDateTime` makes SQLite hand back aware
datetimes like PostgreSQL does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "HELD_QUEUED",
    "PENDING",
    "RETRYING",
    "UTCDateTime",
    "attempts",
    "bounce_events",
    "campaign_suppressions",
    "campaigns",
    "controls",
    "dmarc_rows",
    "dns_evidence",
    "event_cursors",
    "events",
    "ip_leases",
    "lane_days",
    "lane_events",
    "lanes",
    "messages",
    "metadata",
    "nodes",
    "recipient_counts",
    "recipients",
    "reputation_days",
    "suppressions",
    "templates",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to the store: {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - raw SQLite text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

templates = Table(
    "templates",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    # None for a campaign created by the relay: its recipients carry messages.
    Column("template_id", ForeignKey("templates.id")),
    Column("created_at", UTCDateTime, nullable=False),
    # Set by `warmup campaign cancel`: nothing more of it is sent.
    Column("cancelled_at", UTCDateTime),
)

# One complete message submitted through the relay, sent as is to its recipients
# (those whose ``message_id`` points here).
messages = Table(
    "messages",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("content", LargeBinary, nullable=False),
    Column("mail_from", String(320), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("auth_user", String(255)),
    Column("received_at", UTCDateTime, nullable=False),
    # The client's Message-ID, for the outcome events of its recipients.
    Column("client_message_id", Text),
    # A delivery report we made (relay.forward_bounces): the recipient it
    # reports on. Sent with the null envelope sender; one per recipient.
    Column("dsn_for", BigID),
    Index("uq_messages_dsn_for", "dsn_for", unique=True),
)

lanes = Table(
    "lanes",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("ip", String(64), nullable=False),
    Column("isp", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("ramp_day", Integer, nullable=False),
    # The rate in force when last saved (schedule rate x backoff factor).
    Column("allowance_per_hour", Float, nullable=False),
    Column("backoff_factor", Float, nullable=False, default=1.0),
    Column("backoff_until", UTCDateTime),
    Column("recover_at", UTCDateTime),
    Column("paused_until", UTCDateTime),
    Column("throttles", Integer, nullable=False, default=0),
    # The sending day (local date of the window opening) and its counters.
    Column("local_day", Date),
    Column("day_attempted", Integer, nullable=False, default=0),
    Column("day_delivered", Integer, nullable=False, default=0),
    Column("day_soft", Integer, nullable=False, default=0),
    Column("day_hard", Integer, nullable=False, default=0),
    Column("day_throttle", Integer, nullable=False, default=0),
    Column("day_block", Integer, nullable=False, default=0),
    Column("day_complaints", Integer, nullable=False, default=0),
    Column("last_sent_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Paused by an operator, and the newest control (controls.id) applied.
    Column("operator_paused", Boolean, nullable=False, server_default=text("false")),
    Column("control_seen", BigInteger, nullable=False, server_default=text("0")),
    UniqueConstraint("ip", "isp"),
)

# One row per lane per finished sending day: the roll-up behind reports.
lane_days = Table(
    "lane_days",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("lane_id", ForeignKey("lanes.id"), nullable=False),
    Column("day", Date, nullable=False),
    Column("ramp_day", Integer, nullable=False),
    Column("allowance_per_hour", Float, nullable=False),
    Column("planned", Integer, nullable=False),
    Column("attempted", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("soft", Integer, nullable=False),
    Column("hard", Integer, nullable=False),
    Column("throttle", Integer, nullable=False),
    Column("block", Integer, nullable=False),
    Column("complaints", Integer, nullable=False),
    Column("max_per_minute", Integer, nullable=False),
    UniqueConstraint("lane_id", "day"),
)

# Queued and held back unsent (warmup.app.sign.HELD_PREFIX), as the partial
# index ix_recipients_held states it (literally: a bound parameter would not
# match the index's predicate).
HELD_QUEUED = "state = 'queued' AND last_reply LIKE 'held: %'"
# Likewise for the metrics' oldest pending and retry backlog.
PENDING = "state IN ('queued', 'sending')"
RETRYING = "state = 'queued' AND attempts > 0"
# The claim, lease and cancelled-campaign indexes' predicates (migration 0014).
QUEUED_ONLY = "state = 'queued'"
CLAIMED = "claimed_until IS NOT NULL"
CANCELLED_ONLY = "state = 'cancelled'"
HAS_DEADLINE = "deadline_at IS NOT NULL"


def _partial(name: str, *columns: Any, where: str) -> Index:
    """An index of the rows matching ``where`` only, on both backends; queries
    must state ``where`` literally to use it (a bound value does not match)."""
    clause = text(where)
    return Index(name, *columns, sqlite_where=clause, postgresql_where=clause)


recipients = Table(
    "recipients",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("domain", String(255), nullable=False),
    # None until routing decides (domain match at enqueue, else MX lookup later).
    Column("isp", String(64)),
    Column("engagement_score", Float),
    Column("engaged_at", UTCDateTime),
    # Sending order, higher first (core.recipients.routing.engagement_priority).
    Column("priority", Float, nullable=False, default=-1.0),
    # JSON object of the row's placeholder values.
    Column("fields", Text),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("lane_id", ForeignKey("lanes.id")),
    Column("claimed_by", String(128)),
    Column("claimed_until", UTCDateTime),
    Column("last_reply", Text),
    # Set for relayed mail: the message to send (else the campaign's template).
    Column("message_id", ForeignKey("messages.id")),
    # Not sent by then: expired (`enqueue --deadline`, X-Warmup-Deadline).
    Column("deadline_at", UTCDateTime),
    # An address once per campaign for template mail; relayed mail may send a
    # campaign's recipient several messages.
    Index(
        "uq_recipients_campaign_id_address",
        "campaign_id",
        "address",
        unique=True,
        sqlite_where=text("message_id IS NULL"),
        postgresql_where=text("message_id IS NULL"),
    ),
    # Claim order, of queued rows only: an index scan yields the most engaged
    # first, FIFO among equals. Partial indexes (this, the leases, the cancelled)
    # keep a send from moving index entries it does not need moved (migration
    # 0014); their queries spell the predicate as a literal (rows.state_is).
    _partial(
        "ix_recipients_queued", "isp", text("priority DESC"), "id", where=QUEUED_ONLY
    ),
    _partial("ix_recipients_claimed_until", "claimed_until", where=CLAIMED),
    _partial("ix_recipients_cancelled", "campaign_id", where=CANCELLED_ONLY),
    _partial("ix_recipients_deadline_at", "deadline_at", where=HAS_DEADLINE),
    Index(None, "address"),
    Index(None, "message_id"),
    # The held recipients `status` lists; queries spell HELD_QUEUED as is.
    _partial("ix_recipients_held", "campaign_id", where=HELD_QUEUED),
    _partial("ix_recipients_pending_queued_at", "queued_at", where=PENDING),
    _partial("ix_recipients_retrying", "id", where=RETRYING),
)

# Recipients per campaign x ISP ("" while unrouted) x state, kept by triggers on
# recipients (migration 0012), so `status` and the dispatcher's maintenance
# count without scanning the queue. On PostgreSQL each transaction adds its net
# change in its own row (slot = its transaction id: no row every writer
# updates, so nodes never wait on each other) and compact_recipient_counts()
# folds them into slot 0; on SQLite (one writer) each key has one row, slot 0,
# and inserts are counted by the store's writers, not a trigger (0013).
# A count is sum(n) over a key's rows.
recipient_counts = Table(
    "recipient_counts",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("campaign_id", BigInteger, nullable=False),
    Column("isp", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("slot", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    Index(
        "uq_recipient_counts_key", "campaign_id", "isp", "state", "slot", unique=True
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("recipient_id", ForeignKey("recipients.id"), nullable=False, index=True),
    Column("lane_id", ForeignKey("lanes.id"), index=True),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("code", Integer),
    Column("enhanced", String(16)),
    Column("reply", Text),
    Column("rule", String(128)),
)

lane_events = Table(
    "lane_events",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("lane_id", ForeignKey("lanes.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("cause", String(64), nullable=False),
    Column("old_state", String(16)),
    Column("new_state", String(16)),
    Column("reply", Text),
    Column("detail", Text),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", BigID, primary_key=True),
    # Normalised address, or "@domain" for a whole domain.
    Column("address", String(320), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The operator's acts, append-only: pause/resume of lanes (ip and/or isp; None
# is every one), cancel/resume of a campaign. The newest id is the version each
# running dispatcher polls (see warmup.core.lanes.control).
controls = Table(
    "controls",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("action", String(16), nullable=False),
    Column("ip", String(64)),
    Column("isp", String(64)),
    Column("campaign", String(255)),
    Column("until", UTCDateTime),
    Column("reason", Text),
    Column("actor", String(255), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# DNS answers that found a domain dead (NXDOMAIN, Null MX) since its last good
# answer: the domain is declared dead only when they span dns.confirm_after
# (core/recipients/dns_evidence.py). Shared by every node; a good answer deletes the
# row.
dns_evidence = Table(
    "dns_evidence",
    metadata,
    Column("domain", String(255), primary_key=True),
    Column("error", String(16), nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("lookups", Integer, nullable=False),
    Column("next_check_at", UTCDateTime, nullable=False),
)

# The outbox of outcome events (warmup.core.event), written in the transaction
# of the outcome; ``id`` is the event's stable id.
events = Table(
    "events",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("recipient_id", BigID),
    Column("campaign", String(255)),
    Column("recipient", String(320)),
    Column("message_id", Text),
    Column("ip", String(64)),
    Column("isp", String(64)),
    Column("reply", Text),
    Column("status", String(16)),
    Column("reason", String(32)),
    Column("source", String(512)),
)

# How far each consumer of the outbox (the accounting log, each webhook) got,
# and its retry state.
event_cursors = Table(
    "event_cursors",
    metadata,
    Column("name", String(512), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("next_try_at", UTCDateTime),
    Column("failing_since", UTCDateTime),
    Column("last_error", Text),
    # The one shipper (node:pid) of this consumer across nodes, and until when
    # its lease runs (renewed at each step; a lapsed one is taken over).
    Column("holder", String(255)),
    Column("held_until", UTCDateTime),
)

# Bounces and complaints that arrived after the send (DSN, NDR, ARF), one row per
# recipient report. ``key`` makes ingesting the same report twice act once.
# ``lane_id`` with ``applied_at`` NULL: a lane reaction the owning node has still
# to apply (only the process that sends on a lane changes its state).
bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(512), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("reply", Text),
    # How the original send was found: verp, header, recipient; None: not ours.
    Column("found_by", String(16)),
    Column("recipient_id", ForeignKey("recipients.id")),
    Column("attempt", Integer),
    Column("lane_id", ForeignKey("lanes.id")),
    # What ingest did: suppressed, retry, counted, ignored, unmatched.
    Column("outcome", String(16), nullable=False),
    Column("applied_at", UTCDateTime),
    Index(None, "lane_id", "applied_at"),
)

# One row per running `warmup run` process (``claimer`` is ``node:pid``): its
# heartbeat. Past ``alive_until`` the process is dead: any node frees its claims
# and its IP leases at once.
nodes = Table(
    "nodes",
    metadata,
    Column("claimer", String(128), primary_key=True),
    Column("node", String(128), nullable=False),
    # The machine's host name and the process id, so a node restarted on the same
    # machine knows at once that its earlier process is gone.
    Column("machine", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("alive_until", UTCDateTime, nullable=False, index=True),
)

# One owner per source IP: only the process named here sends from the IP, claims
# mail for its lanes and writes their counters; it holds the IP while its
# ``nodes`` row is alive.
ip_leases = Table(
    "ip_leases",
    metadata,
    Column("ip", String(64), primary_key=True),
    Column("claimer", String(128), nullable=False),
    Column("since", UTCDateTime, nullable=False),
)

# An address unsubscribed from one campaign only (``unsubscribe.scope: campaign``);
# global unsubscribes go to ``suppressions``.
campaign_suppressions = Table(
    "campaign_suppressions",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("campaign_id", "address"),
    Index(None, "address"),
)

# DMARC aggregate reports (RFC 7489 rua): one row per report x source IP x day x
# header-From domain, counts of messages. ``report_key`` (reporter and report
# id) makes ingesting the same report twice act once.
dmarc_rows = Table(
    "dmarc_rows",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("report_key", String(64), nullable=False),
    Column("org", String(255), nullable=False),
    Column("source_ip", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("header_from", String(255), nullable=False),
    Column("messages", Integer, nullable=False),
    Column("spf_pass", Integer, nullable=False),
    Column("spf_aligned", Integer, nullable=False),
    Column("dkim_pass", Integer, nullable=False),
    Column("dkim_aligned", Integer, nullable=False),
    # DMARC pass: SPF or DKIM aligned and passing (RFC 7489 4.2).
    Column("dmarc_pass", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("report_key", "source_ip", "day", "header_from"),
    Index(None, "source_ip", "day"),
)

# The ISPs' own reputation data (core.lanes.reputation), one row per source x domain x
# IP x day: Google Postmaster Tools per sending domain (``ip`` empty; the sample
# IPs' categories in ``ip_reputation`` as JSON), Microsoft SNDS per IP (``domain``
# empty). A later fetch of the same day replaces the figures (they get revised).
reputation_days = Table(
    "reputation_days",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("source", String(16), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("spam_rate", Float, nullable=True),
    Column("domain_reputation", String(16), nullable=True),
    Column("ip_reputation", Text, nullable=True),
    Column("spf_rate", Float, nullable=True),
    Column("dkim_rate", Float, nullable=True),
    Column("dmarc_rate", Float, nullable=True),
    Column("filter_result", String(16), nullable=True),
    Column("complaint_rate", Float, nullable=True),
    Column("trap_hits", Integer, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "domain", "ip", "day"),
    Index(None, "day"),
)
