"""Typed rows the store reads back for people: reports, status, trace.

TypedDicts, not dataclasses: each is printed as JSON by a command (``status
--json``, ``trace --json``, ``campaign list --json``, ``events --json``; events
also go to the accounting log and webhooks) or read by key by the report and the
demo's summary, so the shape on the wire stays the dict it was, while mypy now
knows every key and its type.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NotRequired, TypedDict

__all__ = [
    "CampaignCounts",
    "CampaignRow",
    "EventRow",
    "HeldRow",
    "LaneDayRow",
    "LaneEventRow",
    "LastEvent",
    "LateReportRow",
    "TraceStep",
]


class LaneDayRow(TypedDict):
    """One lane-day roll-up (``lane_days``) with its lane's ip and isp."""

    ip: str
    isp: str
    id: int
    lane_id: int
    day: date
    ramp_day: int
    allowance_per_hour: float
    planned: int
    attempted: int
    delivered: int
    soft: int
    hard: int
    throttle: int
    block: int
    complaints: int
    max_per_minute: int


class LastEvent(TypedDict):
    """A lane's newest event (``warmup status``)."""

    at: datetime
    cause: str
    old_state: str | None
    new_state: str | None
    reply: str | None
    detail: str | None


class LaneEventRow(LastEvent):
    """A lane event with its lane's ip and isp (the report)."""

    ip: str
    isp: str


class CampaignCounts(TypedDict):
    """Recipients per state of one campaign (``warmup status``)."""

    name: str
    queued: int
    sending: int
    delivered: int
    bounced: int
    suppressed: int
    expired: int
    cancelled: int
    pending: int  # queued + sending
    total: int


class HeldRow(TypedDict):
    """Queued recipients held back unsent, per campaign and reason."""

    campaign: str
    reason: str
    recipients: int


class CampaignRow(TypedDict):
    """A campaign and its recipient counts per state (``warmup campaign list``)."""

    name: str
    created_at: datetime
    cancelled_at: datetime | None
    relayed: bool  # created by the relay (no template)
    counts: dict[str, int]


class TraceStep(TypedDict):
    """One step of an address's history (``warmup trace``); the step's own
    fields are present only for the steps that have them."""

    at: datetime
    step: str  # enqueued | submitted | attempt | late_report | suppressed | event
    detail: str
    order: NotRequired[int]  # ties at one instant: queued, attempt, report, …
    campaign: NotRequired[str]
    recipient_id: NotRequired[int | None]
    state: NotRequired[str]
    last_reply: NotRequired[str | None]
    ip: NotRequired[str | None]
    isp: NotRequired[str | None]
    verdict: NotRequired[str | None]
    reason: NotRequired[str | None]
    status: NotRequired[str | None]
    reply: NotRequired[str | None]
    outcome: NotRequired[str | None]
    found_by: NotRequired[str | None]
    source: NotRequired[str | None]
    event_id: NotRequired[int]
    type: NotRequired[str]


class EventRow(TypedDict):
    """One outcome event of the outbox (``events``), as shipped to the accounting
    log and webhooks and printed by ``warmup events``: its keys, in this order,
    are the events' JSON contract (:data:`warmup.core.event.EVENT_FIELDS`)."""

    id: int
    type: str
    at: datetime
    campaign: str | None
    recipient: str | None
    message_id: str | None
    ip: str | None
    isp: str | None
    reply: str | None
    status: str | None
    reason: str | None
    source: str | None


class LateReportRow(TypedDict):
    """A saved bounce or complaint report (``bounce_events``)."""

    id: int
    key: str
    received_at: datetime
    source: str
    kind: str
    address: str
    action: str | None
    status: str | None
    verdict: str
    reason: str | None
    reply: str | None
    found_by: str | None
    recipient_id: int | None
    attempt: int | None
    lane_id: int | None
    outcome: str
    applied_at: datetime | None
