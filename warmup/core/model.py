"""Shared vocabulary: enums whose members match their YAML/DB strings."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LaneState", "RecipientState", "SuppressionKind", "Verdict"]


class Verdict(StrEnum):
    """Class of an SMTP reply or a bounce mail."""

    delivered = "delivered"
    soft = "soft"
    hard = "hard"
    throttle = "throttle"
    block = "block"
    feedback = "feedback"
    autoreply = "autoreply"


class RecipientState(StrEnum):
    """Where one recipient of one campaign stands."""

    queued = "queued"  # waiting for its (next) attempt
    sending = "sending"  # claimed by a worker under a lease
    delivered = "delivered"
    bounced = "bounced"  # hard bounce: suppressed
    suppressed = "suppressed"  # dropped before sending: on the suppression list
    expired = "expired"  # soft failures until expire_after, or its deadline
    cancelled = "cancelled"  # its campaign was cancelled (resume re-queues it)


class LaneState(StrEnum):
    ramping = "ramping"
    warmed = "warmed"
    backed_off = "backed_off"
    paused = "paused"


class SuppressionKind(StrEnum):
    address = "address"
    domain = "domain"
