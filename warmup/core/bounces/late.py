"""Bounces and complaints that arrive after the send: which send they are about,
and what each one does.

Rules:

1. The original send is found, in this order, by: the VERP address the report
   was mailed to (``bounces+<token>@<bounce domain>``); our trace in the returned
   original (the ``X-Warmup-Id`` header, or the ``Message-ID`` we set, which
   carries the same token); the reported recipient's latest send (looked up by
   the caller). A token that is present but does not verify makes the whole
   report *forged*: it changes nothing.
2. A token names the recipient. The report's own recipient address is only
   used to find a send when there is no token, so a replayed token cannot aim a
   suppression at another address.
3. What a recipient report does (:func:`effect_of`):

   - ``delayed``, ``delivered``, ``relayed``, auto-replies: recorded, nothing else;
   - a hard failure: the address is suppressed (the domain for an unknown host),
     the recipient is ``bounced``, the lane counts a hard bounce instead of a
     delivery;
   - any other failure (the receiving side gave up after its 250): the recipient
     is retried by the retry policy; the lane counts it, and throttles and blocks
     back the lane off or pause it exactly as a live reply would;
   - a complaint (ARF): the address is suppressed as a complaint, the lane counts
     a complaint.

4. :func:`event_key` makes a report act once: one key per original attempt and
   kind of news (a ``delayed`` and then a ``failed`` notice are two events; the
   same ``failed`` notice twice is one). Reports about no known send are keyed by
   the report's identity and the address.
5. A report without a signed token (rule 1, step three) could be anyone's
   forgery, so it costs nothing by default (:func:`decide_unsigned`): it is
   matched by recipient only when a lookback is configured, never when it came
   over the relay from outside the allowed networks (unless configured), for at
   most ``per_host_per_hour`` reports per reporting host, and for one address
   per report (the first that would act).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from warmup.core.bounces.verp import VERPToken, decode_verp
from warmup.core.model import RecipientState, Verdict
from warmup.core.recipients.suppression import Suppression

__all__ = [
    "Effect",
    "FoundBy",
    "LateReport",
    "Original",
    "PendingLateReport",
    "Reporter",
    "SentRecipient",
    "UnsignedBudget",
    "UnsignedRule",
    "decide_unsigned",
    "effect_of",
    "event_key",
    "find_original",
]

_TOKEN = re.compile(r"r\d{1,19}-a\d{1,9}-[0-9a-f]{6,64}", re.IGNORECASE | re.ASCII)


class FoundBy(StrEnum):
    verp = "verp"
    header = "header"
    recipient = "recipient"


class Effect(StrEnum):
    """What one recipient report does (``outcome`` in ``bounce_events``)."""

    suppress = "suppressed"  # hard bounce: suppressed, recipient bounced
    complaint = "complaint"  # ARF: suppressed as complaint, lane counts it
    retry = "retry"  # failed after acceptance, not hard: retried, lane counts it
    ignore = "ignored"  # delayed, delivered, relayed, auto-reply
    unmatched = "unmatched"  # about no send of ours: recorded only


@dataclass(frozen=True, slots=True, kw_only=True)
class Original:
    """The token of the send a report is about, or why there is none."""

    token: VERPToken | None
    found_by: FoundBy | None
    forged: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SentRecipient:
    """A recipient we sent to, with the lane of the send a report is about."""

    id: int
    address: str
    domain: str
    state: RecipientState
    attempts: int
    queued_at: datetime
    lane_id: int | None
    attempted_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LateReport:
    """One recipient report, and what saving it changes (once, by its ``key``)."""

    key: str
    received_at: datetime
    source: str
    kind: str
    address: str
    action: str
    status: str
    verdict: Verdict
    reason: str
    reply: str
    effect: Effect
    found_by: FoundBy | None = None
    recipient_id: int | None = None
    attempt: int | None = None
    lane_id: int | None = None
    suppression: Suppression | None = None
    # The recipient's new state, only if it is still in ``from_state``.
    new_state: RecipientState | None = None
    from_state: RecipientState = RecipientState.delivered
    next_attempt_at: datetime | None = None

    @property
    def lane_pending(self) -> bool:
        """Whether the lane that sent it has a reaction to apply."""
        return self.lane_id is not None and self.effect in (
            Effect.suppress,
            Effect.complaint,
            Effect.retry,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingLateReport:
    """A saved report whose lane reaction the sending node has still to apply."""

    id: int
    lane_id: int
    ip: str
    isp: str
    verdict: Verdict
    reply: str


def _verify(candidate: str, secret: bytes) -> VERPToken | None:
    """A token string (``r1-a2-mac``) checked against the secret."""
    return decode_verp(f"x+{candidate}@x", secret=secret)


def find_original(
    *,
    envelope: tuple[str, ...],
    traces: tuple[str, ...],
    return_path: str,
    secret: bytes,
) -> Original:
    """Rule 1, steps one and two: a VERP address among ``envelope`` (addresses the
    report was sent to), else a token among ``traces`` (header values of the
    returned original)."""
    local, _, domain = return_path.lower().rpartition("@")
    prefix = local + "+"
    for address in envelope:
        lowered = address.strip().strip("<>").lower()
        box, _, at = lowered.rpartition("@")
        if at != domain or not box.startswith(prefix):
            continue
        # Not ASCII (any sender may write one): no token of ours, and no HMAC.
        token = decode_verp(lowered, secret=secret) if lowered.isascii() else None
        if token is None:
            return _forged(f"VERP token of {address!r} does not verify")
        return Original(token=token, found_by=FoundBy.verp)
    for value in traces:
        match = _TOKEN.search(value)
        if match is None:
            continue
        token = _verify(match.group(0).lower(), secret)
        if token is None:
            return _forged(
                f"trace {match.group(0)!r} in the returned mail does not verify"
            )
        return Original(token=token, found_by=FoundBy.header)
    return Original(token=None, found_by=None)


def _forged(detail: str) -> Original:
    return Original(token=None, found_by=None, forged=True, detail=detail)


_FAILED = {"failed", ""}


def effect_of(*, kind: str, action: str, verdict: Verdict) -> Effect:
    """Rule 3, for a report about a known send."""
    if kind == "feedback" or verdict is Verdict.feedback:
        return Effect.complaint
    if kind != "bounce" or action.lower() not in _FAILED:
        return Effect.ignore
    if verdict is Verdict.hard:
        return Effect.suppress
    if verdict in (Verdict.soft, Verdict.throttle, Verdict.block):
        return Effect.retry
    return Effect.ignore


def event_key(
    *,
    token: VERPToken | None,
    kind: str,
    action: str,
    address: str,
    report_id: str,
) -> str:
    """Rule 4: the idempotency key of one recipient report (64 hex digits)."""
    news = "complaint" if kind == "feedback" else f"{kind}:{action.lower()}"
    if token is not None:
        text = f"r{token.recipient_id}-a{token.attempt}|{news}"
    else:
        text = f"{report_id}|{address.lower()}|{news}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


# -- rule 5: unsigned reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsignedRule:
    """How far a report without a signed token may act (``bounces:`` settings)."""

    lookback: timedelta | None = None
    per_host_per_hour: int = 10
    from_outside: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reporter:
    """Who handed a report over: the relay client (``outside``: not in the allowed
    networks), or for a mailbox the address our mail server received it from."""

    host: str = "unknown"
    outside: bool = False


def decide_unsigned(rule: UnsignedRule, reporter: Reporter) -> str | None:
    """Rule 5 before the budget: None if an unsigned report from ``reporter`` may
    be matched by recipient, else why not (for the log)."""
    if rule.lookback is None:
        return "bounces.recipient_lookback is off"
    if reporter.outside and not rule.from_outside:
        return (
            "it came from outside relay.allowed_networks "
            "(bounces.unsigned_from_outside is off)"
        )
    return None


class UnsignedBudget:
    """Rule 5's rate: at most ``per_hour`` unsigned reports per reporting host in
    any hour; bounded to ``max_hosts`` hosts (the oldest forgotten first)."""

    def __init__(self, per_hour: int, *, max_hosts: int = 10_000) -> None:
        self._per_hour = per_hour
        self._max_hosts = max_hosts
        self.taken: dict[str, deque[datetime]] = {}

    def take(self, host: str, now: datetime) -> bool:
        """One report from ``host`` at ``now``; False if over the budget."""
        times = self.taken.pop(host, None) or deque(maxlen=self._per_hour)
        while times and now - times[0] >= timedelta(hours=1):
            times.popleft()
        ok = len(times) < self._per_hour
        if ok:
            times.append(now)
        self.taken[host] = times  # last in the dict: the most recently seen
        while len(self.taken) > self._max_hosts:
            del self.taken[next(iter(self.taken))]
        return ok
