"""Row helpers the store's parts share: recipient states, lane rows, claim filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, exists, literal_column, select

from warmup.adapters.db.schema import (
    campaigns,
    ip_leases,
    recipients,
)
from warmup.core.errors import StoreError
from warmup.core.lanes.lane import DayStats, Lane
from warmup.core.model import LaneState, RecipientState
from warmup.core.recipients.suppression import Suppression

__all__ = [
    "CANCELLED",
    "DEADLINE_PASSED",
    "QUEUED",
    "SENDING",
    "UNCLAIMED",
    "cancelled_campaigns",
    "held_by_another",
    "lane_from_row",
    "lane_row",
    "requeued_state",
    "require_aware",
    "state_is",
    "suppression_row",
    "under_claim",
]

DEADLINE_PASSED = "deadline passed before it could be sent"

QUEUED = RecipientState.queued.value
SENDING = RecipientState.sending.value
CANCELLED = RecipientState.cancelled.value
_STATES = frozenset(state.value for state in RecipientState)
UNCLAIMED: dict[str, Any] = {
    "claimed_by": None,
    "claimed_until": None,
    "lane_id": None,
}


def state_is(state: str) -> Any:
    """``recipients.state = '<state>'`` with the state as a literal, so the
    partial indexes on it (schema: queued, cancelled) serve the query: neither
    SQLite nor a prepared PostgreSQL plan matches a bound parameter to them."""
    assert state in _STATES, state  # a RecipientState value, never input
    return recipients.c.state == literal_column(f"'{state}'")


def under_claim() -> Any:
    """The rows under a claim (sending): the lease index's own predicate, so it
    serves a query that looks for them by another column."""
    return recipients.c.claimed_until.is_not(None)


def suppression_row(entry: Suppression) -> dict[str, Any]:
    return {
        "address": entry.address,
        "kind": entry.kind.value,
        "reason": entry.reason,
        "source": entry.source,
        "created_at": entry.created_at,
    }


def lane_row(lane: Lane, allowance: float, now: datetime) -> dict[str, Any]:
    stats = lane.stats
    return {
        "state": lane.state.value,
        "ramp_day": lane.ramp_day,
        "allowance_per_hour": allowance,
        "backoff_factor": lane.factor,
        "backoff_until": lane.hold_until,
        "recover_at": lane.recover_at,
        "paused_until": lane.paused_until,
        "throttles": lane.throttles,
        "local_day": lane.day,
        "day_attempted": stats.attempted,
        "day_delivered": stats.delivered,
        "day_soft": stats.soft,
        "day_hard": stats.hard,
        "day_throttle": stats.throttle,
        "day_block": stats.block,
        "day_complaints": stats.complaints,
        "last_sent_at": lane.last_sent_at,
        "operator_paused": lane.operator,
        "control_seen": lane.control_seen,
        "updated_at": now,
    }


def held_by_another(ip: Any, claimer: str) -> Any:
    """The IP is leased to another process: its lanes are not ours to claim
    for or to write (one owner per source IP, warmup.app.ownership)."""
    return exists().where(ip_leases.c.ip == ip, ip_leases.c.claimer != claimer)


def cancelled_campaigns() -> Any:
    return select(campaigns.c.id).where(campaigns.c.cancelled_at.is_not(None))


def requeued_state() -> Any:
    """Unsent claims go back to the queue, or stay out of it once their campaign
    was cancelled (the cancel moved only the queued ones)."""
    return case(
        (recipients.c.campaign_id.in_(cancelled_campaigns()), CANCELLED),
        else_=QUEUED,
    )


def lane_from_row(row: Any) -> Lane:
    return Lane(
        ip=row.ip,
        isp=row.isp,
        state=LaneState(row.state),
        ramp_day=row.ramp_day,
        factor=row.backoff_factor,
        hold_until=row.backoff_until,
        recover_at=row.recover_at,
        paused_until=row.paused_until,
        throttles=row.throttles,
        day=row.local_day,
        last_sent_at=row.last_sent_at,
        operator=bool(row.operator_paused),
        control_seen=int(row.control_seen),
        stats=DayStats(
            attempted=row.day_attempted,
            delivered=row.day_delivered,
            soft=row.day_soft,
            hard=row.day_hard,
            throttle=row.day_throttle,
            block=row.day_block,
            complaints=row.day_complaints,
        ),
    )


def require_aware(moment: datetime) -> None:
    # The PostgreSQL bulk path bypasses UTCDateTime, so check here as it would.
    if moment.tzinfo is None:
        raise StoreError("writing", f"naive datetime given to the store: {moment!r}")
