"""Outcome events: what happened to a recipient, as the campaign tool hears it.

Every recipient outcome becomes one event, written to the ``events`` outbox in
the same transaction as the outcome itself (so a crash loses none and invents
none); webhooks and the accounting log ship them from there. An event's ``id``
is its outbox row number: stable, unique per database, increasing.
"""

from __future__ import annotations

from enum import StrEnum

from warmup.core.feedback import Effect
from warmup.core.model import RecipientState

__all__ = [
    "EVENT_FIELDS",
    "EventType",
    "attempt_event",
    "report_event",
]


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
