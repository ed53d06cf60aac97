"""What a verdict does: one pure function for live replies, late reports and
expiries alike.

A verdict reaches the engine by three roads (:class:`Source`): the reply to a send
(``reply``, warmup.app.outcome), a report after the 250 (``late``: a DSN or an ARF
complaint; its recipient side at intake, warmup.app.ingest, its lane side on the
sending node's next beat, warmup.app.dispatcher), and the end of a recipient's
retry window by its own failures (``expiry``). :func:`consequences` says what each
does from what the caller knows: the recipient (``recipient``, None when only the
lane is at hand) and the lane (``lane``, None when only the recipient is).

Rules:

1. Recipient. A reply gives the recipient its next state by the retry policy
   (:func:`warmup.core.lanes.backoff.next_attempt`; a connection failure is the lane's
   fault and does not count) and the attempt row to write. A late report moves
   it only by its :class:`~warmup.core.bounces.late.Effect`: ``suppress`` bounces it,
   ``retry`` puts it back by the retry policy (due at once if the policy gives no
   instant), ``complaint`` and the others leave it.
2. Suppression, with its source: a hard bounce suppresses the address, the
   whole domain when it does not exist (``hostunknown``) unless the report was
   unsigned (``signed=False``: one address at most); ``smtp`` for a reply, ``dsn``
   for a late bounce. A complaint suppresses the address as ``complaint``
   (``arf``). An expiry suppresses the address as ``repeated_soft`` (``smtp``)
   when it is the ``retry.suppress_after_expiries``-th in a row.
3. Expiry follows. A reply that expires the recipient by its own failures
   (``decision.counts``) sets :attr:`Consequences.expired`: the caller then asks
   for ``Source.expiry`` with the recipient's earlier expiries in a row.
   Expiries the lane caused (throttles, blocks, connections) never count, here
   nor in that history (nor does a passed deadline: ``store.count_expired``).
4. Lane. A reply counts on the lane's day and reacts (core.lanes.lane rules 2 and 4);
   a late report counts in place of a delivery (rule 6). Either then adds to the
   rolling window, which is judged at once (rule 7); when that reacts, the window
   starts afresh (``window_reset``). An expiry does nothing to the lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from warmup.core.bounces.late import Effect
from warmup.core.lanes.backoff import RetryDecision, next_attempt
from warmup.core.lanes.lane import (
    Lane,
    LaneEvent,
    WindowCounts,
    judge_window,
    on_late_verdict,
    on_reply,
)
from warmup.core.lanes.rolling import counted
from warmup.core.lanes.schedule import Schedule
from warmup.core.model import RecipientState, Verdict
from warmup.core.recipients.address import AddressError
from warmup.core.recipients.suppression import (
    Suppression,
    bounce_target,
    make_suppression,
)
from warmup.core.settings import RetryPolicy

__all__ = [
    "Consequences",
    "LaneView",
    "RecipientView",
    "Said",
    "Source",
    "consequences",
]


class Source(StrEnum):
    reply = "reply"  # the reply to a send (or a connection failure)
    late = "late"  # a DSN or complaint after the 250
    expiry = "expiry"  # the recipient's retry window ran out by its own failures


@dataclass(frozen=True, slots=True, kw_only=True)
class Said:
    """The verdict and what came with it."""

    source: Source
    verdict: Verdict
    reason: str = ""
    enhanced: str | None = None
    text: str = ""  # the reply (or report) text, for the lane's events
    # A reply: the send failed before any reply (the lane's fault, uncounted).
    lane_fault: bool = False
    # A late report: what it does to the recipient (core.bounces.late rule 3), and
    # whether it was matched by a signed token (else never a whole domain).
    effect: Effect | None = None
    signed: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientView:
    address: str
    domain: str
    attempts: int  # counted attempts before this one
    queued_at: datetime
    # Source.expiry: the address's earlier expiries since its last delivery.
    expired_in_a_row: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneView:
    lane: Lane
    schedule: Schedule
    next_window: datetime  # when the lane's sending window next opens
    window: WindowCounts  # the rolling window before this verdict


_NOTHING = WindowCounts(attempted=0, hard=0, complaints=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Consequences:
    verdict: Verdict  # what they are the consequences of
    # The recipient's next state (None: unchanged, or no recipient given).
    decision: RetryDecision | None = None
    # A reply: the recipient's counted attempts after this one.
    attempts: int | None = None
    suppression: Suppression | None = None
    expired: bool = False  # rule 3: ask again with Source.expiry
    lane: Lane | None = None  # the lane after it (None: no lane given)
    events: tuple[LaneEvent, ...] = ()
    # What the rolling window gains (when it is not reset).
    window_add: WindowCounts = _NOTHING
    window_reset: bool = False


def consequences(
    said: Said,
    *,
    recipient: RecipientView | None,
    lane: LaneView | None,
    now: datetime,
    retry: RetryPolicy,
) -> Consequences:
    """Everything ``said`` changes (rules 1-4 above), decided, nothing applied."""
    decision, attempts, suppression = None, None, None
    if recipient is not None:
        decision, suppression = _recipient(said, recipient, now, retry)
        if said.source is Source.reply and decision is not None:
            attempts = recipient.attempts + (1 if decision.counts else 0)
    expired = (
        said.source is Source.reply
        and decision is not None
        and decision.state is RecipientState.expired
        and decision.counts
    )
    if lane is None or said.source is Source.expiry:
        return Consequences(
            verdict=said.verdict,
            decision=decision,
            attempts=attempts,
            suppression=suppression,
            expired=expired,
        )
    after, events, added, reset = _lane(said, lane, now)
    return Consequences(
        verdict=said.verdict,
        decision=decision,
        attempts=attempts,
        suppression=suppression,
        expired=expired,
        lane=after,
        events=tuple(events),
        window_add=added,
        window_reset=reset,
    )


def _recipient(
    said: Said, recipient: RecipientView, now: datetime, retry: RetryPolicy
) -> tuple[RetryDecision | None, Suppression | None]:
    if said.source is Source.expiry:
        if recipient.expired_in_a_row + 1 >= retry.suppress_after_expiries:
            return None, _suppress(recipient, "repeated_soft", "smtp", now)
        return None, None
    if said.source is Source.reply:
        decision = _next(said, recipient, now, retry, lane_fault=said.lane_fault)
        if decision.state is RecipientState.bounced:
            return decision, _suppress(recipient, said.reason or "hard", "smtp", now)
        return decision, None
    if said.effect is Effect.complaint:
        return None, _suppress(recipient, "complaint", "arf", now, whole_domain=False)
    if said.effect is Effect.suppress:
        reason = said.reason or "hard"
        entry = _suppress(recipient, reason, "dsn", now, whole_domain=said.signed)
        return RetryDecision(state=RecipientState.bounced), entry
    if said.effect is Effect.retry:
        decision = _next(said, recipient, now, retry, lane_fault=False)
        at = decision.next_attempt_at or now
        return RetryDecision(state=decision.state, next_attempt_at=at), None
    return None, None


def _next(
    said: Said,
    recipient: RecipientView,
    now: datetime,
    retry: RetryPolicy,
    *,
    lane_fault: bool,
) -> RetryDecision:
    return next_attempt(
        retry,
        verdict=said.verdict,
        attempts=recipient.attempts,
        queued_at=recipient.queued_at,
        now=now,
        lane_fault=lane_fault,
    )


def _suppress(
    recipient: RecipientView,
    reason: str,
    source: str,
    now: datetime,
    *,
    whole_domain: bool = True,
) -> Suppression | None:
    """The suppression, or None for an address no suppression can name."""
    target = bounce_target(
        recipient.address, recipient.domain, reason, whole_domain=whole_domain
    )
    try:
        return make_suppression(target, reason=reason, source=source, now=now)
    except AddressError:
        return None


def _lane(
    said: Said, view: LaneView, now: datetime
) -> tuple[Lane, list[LaneEvent], WindowCounts, bool]:
    verdict = said.verdict
    if said.source is Source.reply:
        lane, events = on_reply(
            view.lane,
            verdict,
            now=now,
            schedule=view.schedule,
            next_window=view.next_window,
            reply=said.text,
            reason=said.reason,
            enhanced=said.enhanced,
        )
    else:
        lane, events = on_late_verdict(
            view.lane,
            verdict,
            now=now,
            schedule=view.schedule,
            next_window=view.next_window,
            reply=said.text,
        )
    added = counted(verdict, late=said.source is Source.late)
    counts = WindowCounts(
        attempted=view.window.attempted + added.attempted,
        hard=view.window.hard + added.hard,
        complaints=view.window.complaints + added.complaints,
    )
    judged, judged_events = judge_window(lane, counts, now=now, schedule=view.schedule)
    return judged, [*events, *judged_events], added, bool(judged_events)
