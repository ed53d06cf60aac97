"""Shared vocabulary: enums whose members match their YAML/DB strings."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DNSError",
    "LaneCause",
    "LaneState",
    "RecipientState",
    "SendStage",
    "SuppressionKind",
    "Verdict",
]


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


class LaneCause(StrEnum):
    """Why a lane event happened: ``LaneEvent.cause`` and the ``cause`` column."""

    throttle = "throttle"  # a throttle reply cut the allowance (or paused the lane)
    block = "block"  # a block reply paused the lane
    authentication = "authentication"  # an unauthenticated-sender reply paused it
    resume = "resume"  # a pause ran out: sending again at a reduced allowance
    recovering = "recovering"  # one step of the allowance back towards the schedule
    recovered = "recovered"  # allowance back to the schedule's rate
    advance = "advance"  # the ramp day moved on
    repeat = "repeat"  # the ramp day is repeated (the day missed `advance`)
    idle_reset = "idle_reset"  # idle too long: back to ramp day 1
    step_back = "step_back"  # hard-bounce rate over the limit: one ramp step back
    complaint_rate = "complaint_rate"  # complaint rate over the limit: paused
    auth_failing = "auth_failing"  # DMARC reports fail: ramp held
    reputation_hold = "reputation_hold"  # ISP reputation data: ramp held
    reputation = "reputation"  # ISP reputation data: paused
    operator_pause = "operator_pause"  # `warmup pause`
    operator_resume = "operator_resume"  # `warmup resume`
    unreachable = "unreachable"  # the lane's receiving hosts cannot be reached


class SendStage(StrEnum):
    """Where in the SMTP session a send ended (``SendOutcome.stage``), in order."""

    connect = "connect"
    ehlo = "ehlo"
    starttls = "starttls"
    mail = "mail"
    rcpt = "rcpt"
    data = "data"


class DNSError(StrEnum):
    """Why a DNS lookup gave no records (``MXAnswer.error``, ``DNSAnswer.error``)."""

    nxdomain = "nxdomain"  # the name does not exist (permanent)
    nullmx = "nullmx"  # the domain publishes a null MX, RFC 7505 (permanent)
    nodata = "nodata"  # the name exists without records of that type
    temporary = "temporary"  # timeout, SERVFAIL: try again later
