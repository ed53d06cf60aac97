"""Values the dispatcher hands to the store: claims, attempts, lane snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from warmup.core.lanes.backoff import RetryDecision
from warmup.core.lanes.lane import DayStats, Lane, LaneEvent
from warmup.core.model import SendStage, Verdict
from warmup.core.recipients.suppression import Suppression
from warmup.core.replies.classify import ConnectionFailure, SMTPReply

__all__ = [
    "STAGES",
    "AttemptRecord",
    "Claimed",
    "DayRecord",
    "HeldRecipient",
    "LaneClaim",
    "LaneRecord",
    "SendOutcome",
    "TickRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """A recipient claimed by this worker under a lease, ready to send."""

    id: int
    campaign_id: int
    address: str
    domain: str
    fields: Mapping[str, str]
    attempts: int
    queued_at: datetime
    priority: float = -1.0
    # Relayed mail: the stored message to send (else the campaign's template).
    message_id: int | None = None
    deadline_at: datetime | None = None  # not sent by then: expired unsent
    # The lease it was claimed under: handing it back unsent needs it (the
    # claim is only given back while it is still ours).
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneClaim:
    """One lane's share of a claim made for several lanes at once."""

    lane_id: int
    isp: str
    limit: int
    lease_until: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    recipient_id: int
    lane_id: int
    attempted_at: datetime
    verdict: Verdict
    reason: str
    code: int | None
    enhanced: str | None
    reply: str
    rule: str
    decision: RetryDecision
    attempts: int  # the recipient's counted attempts after this one


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneRecord:
    lane_id: int
    lane: Lane
    allowance_per_hour: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DayRecord:
    lane_id: int
    day: date
    ramp_day: int
    allowance_per_hour: float
    planned: int
    stats: DayStats
    max_per_minute: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldRecipient:
    """Claimed, not sent and not counted: back to the queue until ``until``, with
    ``reason`` as its last reply (a message no DKIM key covers)."""

    recipient_id: int
    lease_until: datetime
    until: datetime
    reason: str


@dataclass(slots=True, kw_only=True)
class TickRecord:
    """Everything one tick changes, written in one transaction."""

    # Who claimed the recipients: their rows change only while still so
    # claimed (a lease lost to another node is not overwritten). None: no check.
    claimer: str | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # suppressed before sending
    cancelled: list[int] = field(default_factory=list)  # campaign cancelled: unsent
    late: list[int] = field(default_factory=list)  # past their deadline: expired
    # Claimed, not sent: back to the queue, unless the claim (id, lease end)
    # has meanwhile expired and been taken by someone else.
    released: list[tuple[int, datetime]] = field(default_factory=list)
    lanes: dict[int, LaneRecord] = field(default_factory=dict)
    events: list[tuple[int, LaneEvent]] = field(default_factory=list)
    days: list[DayRecord] = field(default_factory=list)
    # Late bounces and complaints (bounce_events ids) whose lane reaction this
    # tick applied.
    late_reports_applied: list[int] = field(default_factory=list)
    held: list[HeldRecipient] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.attempts
            or self.suppressions
            or self.dropped
            or self.cancelled
            or self.late
            or self.released
            or self.lanes
            or self.events
            or self.days
            or self.late_reports_applied
            or self.held
        )


#: The values of ``SendOutcome.stage``, in session order.
STAGES = tuple(SendStage)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOutcome:
    """How one send ended: a server reply, or a connection-level failure.

    Exactly one of ``reply`` and ``failure`` is set. ``reply`` is the decisive reply:
    the rejecting MAIL/RCPT/DATA reply or the final reply after the data. For a
    refusing greeting or HELO (``greeting421``) ``detail`` is the server's reply with
    its code, as :func:`warmup.core.replies.classify.classify_failure` wants it.
    """

    reply: SMTPReply | None
    failure: ConnectionFailure | None = None
    detail: str = ""
    stage: SendStage | None = None

    def __post_init__(self) -> None:
        if (self.reply is None) == (self.failure is None):
            raise ValueError(
                "exactly one of reply and failure must be set, "
                f"got reply={self.reply!r}, failure={self.failure!r}"
            )
        if self.stage is not None and self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")

    @property
    def accepted(self) -> bool:
        """Whether the server took the message (2xx after the data)."""
        code = self.reply.code if self.reply is not None else None
        return code is not None and 200 <= code < 300
