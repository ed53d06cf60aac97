"""SQLStore: the Store port on SQLAlchemy 2.x async (SQLite WAL or PostgreSQL).

The one object the app gets. It is a facade: one :class:`Database` (the engine
and its helpers) shared by small parts, one per subject, each in its own module
(claims, recording, reporting, late reports, …). Every public method is declared
here with :class:`~warmup.adapters.db.failure.delegate`, which forwards to the
part and turns database errors into ``StoreError`` — the one place that
happens. Migrations are applied automatically when the store is opened.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from warmup.adapters.db.campaigns import SQLCampaigns
from warmup.adapters.db.claims import SQLClaims
from warmup.adapters.db.connect import MIGRATIONS, async_url, open_engine
from warmup.adapters.db.controls import SQLControls
from warmup.adapters.db.database import Database
from warmup.adapters.db.dmarc import SQLDMARC
from warmup.adapters.db.dns_evidence import SQLDNSEvidence
from warmup.adapters.db.events import SQLEvents
from warmup.adapters.db.failure import delegate, delegate_stream, translated
from warmup.adapters.db.late_reports import SQLLateReports
from warmup.adapters.db.metrics_queries import SQLMetrics
from warmup.adapters.db.ownership import SQLOwnership
from warmup.adapters.db.recording import SQLRecording
from warmup.adapters.db.reporting import SQLReporting
from warmup.adapters.db.reputation import SQLReputation
from warmup.adapters.db.retention import SQLRetention
from warmup.adapters.db.routing import SQLRouting
from warmup.adapters.db.suppressions import SQLSuppressions
from warmup.adapters.db.trace import SQLTrace
from warmup.adapters.db.unsubscribe import SQLUnsubscribes

__all__ = ["MIGRATIONS", "SQLStore", "async_url"]


class SQLStore:
    """The Store port over one SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        database = Database(engine)
        self.database = database
        self.engine = engine
        self.campaigns = SQLCampaigns(database)
        self.suppressions = SQLSuppressions(database)
        self.routing = SQLRouting(database)
        self.claims = SQLClaims(database)
        self.recording = SQLRecording(database)
        self.reporting = SQLReporting(database)
        self.metrics = SQLMetrics(database)
        self.late_reports = SQLLateReports(database)
        self.unsubscribes = SQLUnsubscribes(database)
        self.dmarc = SQLDMARC(database)
        self.ownership = SQLOwnership(database)
        self.controls = SQLControls(database)
        self.events = SQLEvents(database)
        self.retention = SQLRetention(database)
        self.tracer = SQLTrace(database)
        self.dns = SQLDNSEvidence(database)
        self.reputation = SQLReputation(database)

    @classmethod
    @translated("open")
    async def open(cls, url: str) -> SQLStore:
        """Connect, apply pending migrations, and return the store."""
        return cls(await open_engine(url))

    @translated("closing the database")
    async def close(self) -> None:
        await self.database.close()

    # -- campaigns and recipients --------------------------------------------------

    ensure_campaign = delegate(
        "campaigns", SQLCampaigns.ensure_campaign, "creating the campaign"
    )
    insert_recipients = delegate(
        "campaigns", SQLCampaigns.insert_recipients, "queueing recipients"
    )
    count_recipients = delegate(
        "campaigns", SQLCampaigns.count_recipients, "counting recipients"
    )

    # -- the suppression list ------------------------------------------------------

    suppressed_keys = delegate(
        "suppressions", SQLSuppressions.suppressed_keys, "checking suppressions"
    )
    add_suppressions = delegate(
        "suppressions", SQLSuppressions.add_suppressions, "adding suppressions"
    )
    remove_suppressions = delegate(
        "suppressions", SQLSuppressions.remove_suppressions, "removing suppressions"
    )
    iter_suppressions = delegate_stream(
        "suppressions", SQLSuppressions.iter_suppressions, "listing suppressions"
    )
    count_suppressions = delegate(
        "suppressions", SQLSuppressions.count_suppressions, "counting suppressions"
    )

    # -- routing the queue ---------------------------------------------------------

    queued_isps = delegate("routing", SQLRouting.queued_isps, "counting the queue")
    unrouted_domains = delegate(
        "routing", SQLRouting.unrouted_domains, "listing unrouted domains"
    )
    route_domain = delegate("routing", SQLRouting.route_domain, "routing a domain")
    fail_domain = delegate("routing", SQLRouting.fail_domain, "failing a domain")
    defer_domain = delegate("routing", SQLRouting.defer_domain, "deferring a domain")
    compact_recipient_counts = delegate(
        "routing",
        SQLRouting.compact_recipient_counts,
        "compacting the recipient counts",
    )

    # -- lanes and claims ----------------------------------------------------------

    ensure_lane = delegate("claims", SQLClaims.ensure_lane, "loading a lane")
    ensure_lanes = delegate("claims", SQLClaims.ensure_lanes, "loading lanes")
    claim = delegate("claims", SQLClaims.claim, "claiming recipients")
    claim_lanes = delegate("claims", SQLClaims.claim_lanes, "claiming recipients")
    release_expired_leases = delegate(
        "claims", SQLClaims.release_expired_leases, "returning claims to the queue"
    )
    release_claims = delegate(
        "claims", SQLClaims.release_claims, "returning claims to the queue"
    )
    template_for = delegate("claims", SQLClaims.template_for, "reading a template")
    message_for = delegate("claims", SQLClaims.message_for, "reading a relayed message")
    relayed_message = delegate(
        "claims", SQLClaims.relayed_message, "reading a relayed message"
    )
    count_expired = delegate("claims", SQLClaims.count_expired, "counting expiries")

    # -- recording a tick ----------------------------------------------------------

    record = delegate("recording", SQLRecording.record, "recording attempts")

    # -- reading back --------------------------------------------------------------

    lane_history = delegate(
        "reporting", SQLReporting.lane_history, "reading the lane history"
    )
    all_lanes = delegate("reporting", SQLReporting.all_lanes, "reading the lanes")
    all_events = delegate("reporting", SQLReporting.all_events, "reading lane events")
    sent_to_suppressed = delegate(
        "reporting",
        SQLReporting.sent_to_suppressed,
        "counting sends to suppressed addresses",
    )
    last_events = delegate("reporting", SQLReporting.last_events, "reading lane events")
    campaign_summary = delegate(
        "reporting", SQLReporting.campaign_summary, "counting recipients"
    )
    held_messages = delegate(
        "reporting", SQLReporting.held_messages, "counting held recipients"
    )

    # -- metrics --------------------------------------------------------------------

    lane_totals = delegate("metrics", SQLMetrics.lane_totals, "reading lane totals")
    queue_totals = delegate("metrics", SQLMetrics.queue_totals, "reading queue totals")

    # -- late bounces and complaints -----------------------------------------------

    sent_recipient = delegate(
        "late_reports", SQLLateReports.sent_recipient, "looking up the original send"
    )
    latest_sent_to = delegate(
        "late_reports", SQLLateReports.latest_sent_to, "looking up the original send"
    )
    save_late_reports = delegate(
        "late_reports", SQLLateReports.save_late_reports, "saving bounces"
    )
    pending_late_reports = delegate(
        "late_reports", SQLLateReports.pending_late_reports, "reading pending bounces"
    )
    lane_windows = delegate(
        "late_reports", SQLLateReports.lane_windows, "reading lanes' recent outcomes"
    )
    late_report_rows = delegate(
        "late_reports", SQLLateReports.late_report_rows, "reading bounces"
    )

    # -- unsubscribes --------------------------------------------------------------

    unsubscribe_target = delegate(
        "unsubscribes",
        SQLUnsubscribes.unsubscribe_target,
        "finding the unsubscribing recipient",
    )
    unsubscribe = delegate(
        "unsubscribes", SQLUnsubscribes.unsubscribe, "recording an unsubscribe"
    )
    add_campaign_suppression = delegate(
        "unsubscribes",
        SQLUnsubscribes.add_campaign_suppression,
        "adding a campaign unsubscribe",
    )
    campaign_suppressed = delegate(
        "unsubscribes",
        SQLUnsubscribes.campaign_suppressed,
        "checking campaign unsubscribes",
    )
    any_campaign_suppressions = delegate(
        "unsubscribes",
        SQLUnsubscribes.any_campaign_suppressions,
        "checking campaign unsubscribes",
    )

    # -- DMARC reports -------------------------------------------------------------

    save_dmarc = delegate("dmarc", SQLDMARC.save_dmarc, "saving a DMARC report")
    auth_days = delegate("dmarc", SQLDMARC.auth_days, "reading DMARC figures")

    # -- processes and IP leases ---------------------------------------------------

    local_processes = delegate(
        "ownership", SQLOwnership.local_processes, "reading this machine's processes"
    )
    heartbeat = delegate("ownership", SQLOwnership.heartbeat, "renewing the IP leases")
    leave = delegate("ownership", SQLOwnership.leave, "giving up the IP leases")
    ip_owners = delegate("ownership", SQLOwnership.ip_owners, "reading the IP owners")
    claims_per_lane = delegate(
        "ownership", SQLOwnership.claims_per_lane, "counting claims per lane"
    )

    # -- operator controls ---------------------------------------------------------

    add_control = delegate("controls", SQLControls.add_control, "saving the control")
    control_version = delegate(
        "controls", SQLControls.control_version, "reading the operator controls"
    )
    controls_after = delegate(
        "controls", SQLControls.controls_after, "reading the operator controls"
    )
    cancelled_campaign_ids = delegate(
        "controls",
        SQLControls.cancelled_campaign_ids,
        "reading the cancelled campaigns",
    )
    set_campaign_cancelled = delegate(
        "controls", SQLControls.set_campaign_cancelled, "changing the campaign"
    )
    expire_deadlines = delegate(
        "controls", SQLControls.expire_deadlines, "expiring past deadlines"
    )
    campaign_rows = delegate(
        "controls", SQLControls.campaign_rows, "reading the campaigns"
    )

    # -- the events outbox ---------------------------------------------------------

    read_events = delegate("events", SQLEvents.read_events, "reading events")
    record_refused = delegate(
        "events", SQLEvents.record_refused, "recording refused recipients"
    )
    last_event_id = delegate("events", SQLEvents.last_event_id, "reading events")
    cursor = delegate("events", SQLEvents.cursor, "reading an event cursor")
    save_cursor = delegate("events", SQLEvents.save_cursor, "saving an event cursor")
    backlog = delegate("events", SQLEvents.backlog, "counting the events backlog")
    lease_cursor = delegate("events", SQLEvents.lease_cursor, "leasing an event cursor")
    release_cursor = delegate(
        "events", SQLEvents.release_cursor, "releasing an event cursor"
    )

    # -- retention -----------------------------------------------------------------

    prune = delegate("retention", SQLRetention.prune, "pruning")
    prune_events = delegate("retention", SQLRetention.prune_events, "pruning events")

    # -- trace ---------------------------------------------------------------------

    trace = delegate("tracer", SQLTrace.trace, "tracing an address")

    # -- DNS evidence --------------------------------------------------------------

    dns_evidence = delegate("dns", SQLDNSEvidence.dns_evidence, "reading DNS evidence")
    save_dns_evidence = delegate(
        "dns", SQLDNSEvidence.save_dns_evidence, "saving DNS evidence"
    )
    forget_dns_evidence = delegate(
        "dns", SQLDNSEvidence.forget_dns_evidence, "forgetting DNS evidence"
    )

    # -- reputation ----------------------------------------------------------------

    save_reputation = delegate(
        "reputation", SQLReputation.save_reputation, "saving reputation data"
    )
    reputation_days = delegate(
        "reputation", SQLReputation.reputation_days, "reading reputation data"
    )
