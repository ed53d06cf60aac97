"""Outcome events: what happened to a recipient, as the campaign tool hears it.

Every recipient outcome becomes one event, written to the ``events`` outbox in
the same transaction as the outcome itself (so a crash loses none and invents
none); webhooks and the accounting log ship them from there. An event's ``id``
is its outbox row number: stable, unique per database, increasing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from warmup.core.bounces.late import Effect
from warmup.core.model import RecipientState

__all__ = [
    "EVENT_FIELDS",
    "DeliveryCursor",
    "EventType",
    "after_failure",
    "after_success",
    "attempt_event",
    "report_event",
]

_FIRST_RETRY = timedelta(seconds=2)
_LONGEST_RETRY = timedelta(minutes=10)


class EventType(StrEnum):
    delivered = "delivered"
    deferred = "deferred"  # a temporary failure: tried again later
    bounced = "bounced"  # a hard bounce, live or by DSN
    expired = "expired"  # given up unsent: retries ran out, or its deadline
    complained = "complained"  # an ARF report
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"  # refused: already on the suppression list
    cancelled = "cancelled"  # its campaign was cancelled


#: The fields of an event, in the order they are shown.
EVENT_FIELDS = (
    "id",
    "type",
    "at",
    "campaign",
    "recipient",
    "message_id",
    "ip",
    "isp",
    "reply",
    "status",
    "reason",
    "source",
)

_BY_STATE = {
    RecipientState.delivered: EventType.delivered,
    RecipientState.queued: EventType.deferred,
    RecipientState.bounced: EventType.bounced,
    RecipientState.expired: EventType.expired,
    RecipientState.suppressed: EventType.suppressed,
    RecipientState.cancelled: EventType.cancelled,
}

_BY_EFFECT = {
    Effect.suppress: EventType.bounced,
    Effect.complaint: EventType.complained,
    Effect.retry: EventType.deferred,
}


def attempt_event(state: RecipientState) -> EventType:
    """The event of an attempt that left its recipient in ``state``."""
    return _BY_STATE.get(state, EventType.deferred)


def report_event(effect: Effect) -> EventType | None:
    """The event of a late report about one of our sends (None: no outcome)."""
    return _BY_EFFECT.get(effect)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCursor:
    """How far one consumer of the outbox (a webhook, the log) got."""

    name: str
    last_id: int = 0
    failures: int = 0  # failed deliveries in a row
    next_try_at: datetime | None = None
    failing_since: datetime | None = None


def after_success(cursor: DeliveryCursor, last_id: int) -> DeliveryCursor:
    return replace(
        cursor, last_id=last_id, failures=0, next_try_at=None, failing_since=None
    )


def after_failure(
    cursor: DeliveryCursor, *, now: datetime, retry_for: timedelta, last_id: int
) -> tuple[DeliveryCursor, bool]:
    """Back off exponentially (2 s, 4 s, … at most 10 min); once the endpoint has
    failed for ``retry_for``, give the batch up: (cursor, gave_up)."""
    since = cursor.failing_since or now
    if now - since >= retry_for:
        return after_success(cursor, last_id), True
    failures = cursor.failures + 1
    delay = min(_FIRST_RETRY * 2 ** min(failures - 1, 20), _LONGEST_RETRY)
    failed = replace(
        cursor, failures=failures, next_try_at=now + delay, failing_since=since
    )
    return failed, False
