"""Ports: the Protocols the use cases depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from warmup.core.attempt import Claimed, LaneClaim, SendOutcome, TickRecord
from warmup.core.auth.dmarc import AuthDay
from warmup.core.bounces.late import PendingLateReport
from warmup.core.lanes.control import Control
from warmup.core.lanes.lane import Lane
from warmup.core.lanes.reputation import PostmasterDay, SNDSRow
from warmup.core.model import DNSError, Verdict
from warmup.core.recipients.address import Address
from warmup.core.recipients.dns_evidence import DeadEvidence
from warmup.core.recipients.recipient import NewRecipient
from warmup.core.recipients.suppression import Suppression
from warmup.core.settings import SourceIP

__all__ = [
    "CampaignRef",
    "Clock",
    "DNSAnswer",
    "DNSLookup",
    "EngineStore",
    "FiledMessage",
    "Heartbeat",
    "IPOwner",
    "MXAnswer",
    "NodeProcess",
    "OwnershipStore",
    "RelayStore",
    "RelayedMessage",
    "Resolver",
    "Sender",
    "Store",
    "TemplateRecord",
]


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateRecord:
    name: str
    sha256: str
    content: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRef:
    id: int
    name: str
    created: bool


class Store(Protocol):
    """The durable queue and suppression list, as intake sees them."""

    async def ensure_campaign(
        self, name: str, template: TemplateRecord, now: datetime
    ) -> CampaignRef:
        """The campaign called ``name``, created with ``template`` if new.

        Raises InputError if it exists with a different template.
        """
        ...

    async def insert_recipients(
        self,
        campaign_id: int,
        recipients: Sequence[NewRecipient],
        isps: Sequence[str | None],
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> int:
        """Queue recipients, skipping addresses already in the campaign; those
        not sent by ``deadline`` expire unsent.

        Returns how many were inserted.
        """
        ...

    async def record_refused(
        self, campaign_id: int, addresses: Sequence[str], now: datetime, source: str
    ) -> None:
        """A ``suppressed`` outcome event per address refused before queueing."""
        ...

    async def suppressed_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these suppression keys (addresses or @domains) are present."""
        ...

    async def add_suppressions(self, entries: Sequence[Suppression]) -> int:
        """Insert entries not yet present; returns how many were new."""
        ...

    async def remove_suppressions(self, addresses: Sequence[str]) -> int: ...

    def iter_suppressions(
        self,
        *,
        reason: str | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Suppression]: ...

    async def count_suppressions(self) -> int: ...

    async def close(self) -> None: ...


# -- one owner per source IP (warmup.app.ownership) --------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeProcess:
    """One running `warmup run`: ``claimer`` is ``node:pid``."""

    claimer: str
    node: str
    machine: str
    pid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IPOwner:
    """Who holds a source IP; ``alive_until`` None: its heartbeat row is gone."""

    ip: str
    claimer: str
    node: str | None = None
    machine: str | None = None
    alive_until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """What one heartbeat found."""

    owned: frozenset[str]
    # IPs this process wants that another live process holds.
    waiting: Mapping[str, IPOwner]
    # Claims of dead processes returned to the queue, and IPs taken from them.
    released: int = 0
    taken_over: Mapping[str, str] | None = None
    # Grows whenever mail is queued (the newest recipient's id).
    queue_mark: int = 0


class OwnershipStore(Protocol):
    """Heartbeats and IP leases (SQL: tables ``nodes`` and ``ip_leases``)."""

    async def local_processes(self, machine: str, now: datetime) -> list[NodeProcess]:
        """Processes on ``machine`` whose heartbeat has not lapsed."""
        ...

    async def heartbeat(
        self,
        me: NodeProcess,
        ips: Sequence[str],
        *,
        now: datetime,
        alive_until: datetime,
        dead: Sequence[str] = (),
    ) -> Heartbeat:
        """Renew ``me``, mark ``dead`` processes lapsed, free what lapsed
        processes held, and take each of ``ips`` that is free."""
        ...

    async def leave(self, claimer: str, now: datetime) -> None:
        """A clean stop: the process's IPs are free at once."""
        ...

    async def ip_owners(self) -> list[IPOwner]: ...

    async def claims_per_lane(self) -> dict[int, int]:
        """Recipients claimed and not yet sent, per lane."""
        ...

    async def all_lanes(self) -> list[tuple[int, Lane, float]]: ...


class EngineStore(Store, OwnershipStore, Protocol):
    """What the dispatcher needs on top: leases, lanes, recording."""

    async def ensure_lane(self, initial: Lane, now: datetime) -> tuple[int, Lane]: ...

    async def ensure_lanes(
        self, initials: Sequence[Lane], now: datetime
    ) -> list[tuple[int, Lane]]:
        """``ensure_lane`` for each, in one transaction, in their order."""
        ...

    async def queued_isps(self) -> dict[str, int]: ...

    async def compact_recipient_counts(self) -> None: ...

    async def unrouted_domains(self, limit: int = 500) -> list[str]: ...

    async def route_domain(self, domain: str, isp: str, now: datetime) -> int: ...

    async def fail_domain(self, domain: str, reply: str, now: datetime) -> int: ...

    async def defer_domain(
        self, domain: str, reply: str, until: datetime, now: datetime
    ) -> int: ...

    async def dns_evidence(
        self, domains: Sequence[str]
    ) -> dict[str, tuple[DeadEvidence, datetime]]: ...

    async def save_dns_evidence(
        self, domain: str, evidence: DeadEvidence, next_check_at: datetime
    ) -> None: ...

    async def forget_dns_evidence(self, domain: str) -> None: ...

    async def claim(
        self,
        *,
        lane_id: int,
        isp: str,
        limit: int,
        now: datetime,
        claimer: str,
        lease_until: datetime,
    ) -> list[Claimed]: ...

    async def claim_lanes(
        self, requests: Sequence[LaneClaim], *, now: datetime, claimer: str
    ) -> list[list[Claimed]]: ...

    async def release_expired_leases(self, now: datetime) -> int: ...

    async def release_claims(self, claimer: str, now: datetime) -> int: ...

    async def template_for(self, campaign_id: int) -> bytes: ...

    async def message_for(self, message_id: int) -> bytes:
        """A relayed message's stored bytes."""
        ...

    async def relayed_message(self, message_id: int) -> tuple[bytes, bool]:
        """A relayed message's stored bytes, and whether it goes out with the
        null envelope sender (a delivery report warmup made)."""
        ...

    async def count_expired(self, address: str) -> int: ...

    async def record(self, tick: TickRecord, now: datetime) -> None: ...

    async def lane_windows(
        self, lane_ids: Sequence[int], since: datetime
    ) -> dict[int, list[tuple[datetime, Verdict, bool]]]:
        """Each lane's recent outcomes for its rolling window, by lane id:
        (at, verdict, late), oldest first."""
        ...

    async def pending_late_reports(
        self, ips: Sequence[str], limit: int = 1000
    ) -> list[PendingLateReport]:
        """Late bounces and complaints whose lane reaction is still to apply."""
        ...

    async def campaign_suppressed(
        self, pairs: Sequence[tuple[int, str]]
    ) -> set[tuple[int, str]]:
        """Which (campaign id, address) pairs are unsubscribed from that campaign."""
        ...

    async def any_campaign_suppressions(self) -> bool:
        """Whether any address is unsubscribed from a single campaign."""
        ...

    async def auth_days(
        self, ips: Sequence[str] | None = None, since: date | None = None
    ) -> list[AuthDay]:
        """Per source IP x day, what the DMARC aggregate reports say."""

    async def reputation_days(
        self, since: date | None = None
    ) -> tuple[list[PostmasterDay], list[SNDSRow]]:
        """The ISPs' own figures (app.reputation) from ``since`` on."""
        ...

    async def control_version(self) -> int:
        """The newest operator control's id (0: none)."""
        ...

    async def controls_after(self, seen: int) -> list[Control]: ...

    async def cancelled_campaign_ids(self) -> set[int]: ...

    async def expire_deadlines(self, now: datetime) -> int:
        """Queued recipients past their deadline expire; returns how many."""
        ...


class Sender(Protocol):
    """One SMTP transaction from a source IP to a host; failures are values."""

    async def send(
        self,
        *,
        source: SourceIP,
        host: str,
        port: int,
        sender: str,
        recipient: str,
        message: bytes,
    ) -> SendOutcome: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MXAnswer:
    """MX hosts by preference, or why there are none."""

    hosts: tuple[str, ...] = ()
    # nxdomain and nullmx are permanent; temporary means try again later.
    error: DNSError | None = None


class Resolver(Protocol):
    async def mx(self, domain: str) -> MXAnswer: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSAnswer:
    """Records as text (TXT strings joined; MX ``pref host``; names without the
    final dot, lower-cased), or why there are none: "nxdomain", "nodata" (the
    name exists without that type), "temporary" (timeout, SERVFAIL)."""

    records: tuple[str, ...] = ()
    error: DNSError | None = None


class DNSLookup(Protocol):
    """Any lookup (A, AAAA, MX, TXT, PTR) for `warmup doctor`."""

    async def lookup(self, name: str, rdtype: str) -> DNSAnswer: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayedMessage:
    """A message accepted by the relay, to be committed before its 250."""

    campaign: str
    content: bytes  # as it will be sent (see warmup.core.relay.message)
    mail_from: str  # the client's envelope sender, kept for the record
    peer: str
    auth_user: str | None
    received_at: datetime
    recipients: Sequence[tuple[Address, str | None]]  # and ISP (None: by MX)
    deadline: datetime | None = None  # not sent by then: expired
    priority: float = -1.0  # claim order, higher first (X-Warmup-Priority)
    # A delivery report warmup made (relay.forward_bounces): the recipient it
    # reports on; sent with the null envelope sender.
    dsn_for: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FiledMessage:
    message_id: int
    queued: int
    suppressed: int  # on the suppression list: recorded as such, never sent


class RelayStore(Protocol):
    """The relay's side of the queue."""

    async def commit_message(self, message: RelayedMessage) -> FiledMessage:
        """Campaign (created if new), message and recipients committed (durably)
        before it returns; recipients on the suppression list are recorded as
        ``suppressed``. Raises StoreError (then nothing of it is kept)."""
        ...
