"""Ports: the Protocols the use cases depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from warmup.core.address import Address
from warmup.core.attempt import Claimed, SendOutcome, TickRecord
from warmup.core.control import Control
from warmup.core.feedback import PendingLaneNews
from warmup.core.lane import Lane
from warmup.core.model import Verdict
from warmup.core.recipient import NewRecipient
from warmup.core.settings import SourceIP
from warmup.core.suppression import Suppression

__all__ = [
    "CampaignRef",
    "Clock",
    "EngineStore",
    "FiledMessage",
    "MXAnswer",
    "RelayedMessage",
    "Resolver",
    "Sender",
    "Store",
    "SubmissionStore",
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
        self, *, reason: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Suppression]: ...

    async def count_suppressions(self) -> int: ...

    async def close(self) -> None: ...


class EngineStore(Store, Protocol):
    """What the dispatcher needs on top: leases, lanes, recording."""

    async def ensure_lane(self, initial: Lane, now: datetime) -> tuple[int, Lane]: ...

    async def queued_isps(self) -> dict[str, int]: ...

    async def unrouted_domains(self, limit: int = 500) -> list[str]: ...

    async def route_domain(self, domain: str, isp: str, now: datetime) -> int: ...

    async def fail_domain(self, domain: str, reply: str, now: datetime) -> int: ...

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

    async def release_expired_leases(self, now: datetime) -> int: ...

    async def release_claims(self, claimer: str, now: datetime) -> int: ...

    async def release_node_claims(
        self, node: str, current: str, now: datetime
    ) -> int: ...

    async def template_for(self, campaign_id: int) -> bytes: ...

    async def message_for(self, message_id: int) -> bytes:
        """A relayed message's stored bytes."""
        ...

    async def count_expired(self, address: str) -> int: ...

    async def record(self, tick: TickRecord, now: datetime) -> None: ...

    async def lane_window(
        self, lane_id: int, since: datetime
    ) -> list[tuple[datetime, Verdict, bool]]:
        """The lane's recent outcomes for its rolling window: (at, verdict, late)."""
        ...

    async def pending_lane_news(
        self, ips: Sequence[str], limit: int = 1000
    ) -> list[PendingLaneNews]:
        """Late bounces and complaints whose lane reaction is still to apply."""
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
    # "nxdomain" and "nullmx" are permanent; "temporary" means try again later.
    error: str | None = None


class Resolver(Protocol):
    async def mx(self, domain: str) -> MXAnswer: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayedMessage:
    """A message accepted by the relay, to be committed before its 250."""

    campaign: str
    content: bytes  # as it will be sent (see warmup.core.relay_message)
    mail_from: str  # the client's envelope sender, kept for the record
    peer: str
    auth_user: str | None
    received_at: datetime
    recipients: Sequence[tuple[Address, str | None]]  # and ISP (None: by MX)
    deadline: datetime | None = None  # not sent by then: expired
    priority: float = -1.0  # claim order, higher first (X-Warmup-Priority)


@dataclass(frozen=True, slots=True, kw_only=True)
class FiledMessage:
    message_id: int
    queued: int
    suppressed: int  # on the suppression list: recorded as such, never sent


class SubmissionStore(Protocol):
    """The relay's side of the queue."""

    async def commit_message(self, message: RelayedMessage) -> FiledMessage:
        """Campaign (created if new), message and recipients committed (durably)
        before it returns; recipients on the suppression list are recorded as
        ``suppressed``. Raises StoreError (then nothing of it is kept)."""
        ...
