"""core/lanes/reaction.py: what every verdict does, from every source (live reply,
late report, expiry), as one pure function."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from warmup.core.bounces.late import Effect, effect_of
from warmup.core.lanes.lane import DayStats, Lane, WindowCounts
from warmup.core.lanes.reaction import (
    Consequences,
    LaneView,
    RecipientView,
    Said,
    Source,
    consequences,
)
from warmup.core.lanes.schedule import RampStep, Schedule, Window
from warmup.core.model import LaneState, RecipientState, Verdict
from warmup.core.settings import RetryPolicy

NOW = datetime(2030, 1, 1, 1, 30, tzinfo=UTC)
NEXT_WINDOW = datetime(2030, 1, 2, 1, 0, tzinfo=UTC)
SCHEDULE = Schedule(
    isp="gmail",
    window=Window(start=time(1), end=time(3)),
    steps=(RampStep(first_day=1, last_day=9, per_hour=60),),
)
RETRY = RetryPolicy()
EMPTY = WindowCounts(attempted=0, hard=0, complaints=0)
ANN = RecipientView(
    address="ann@gmail.com",
    domain="gmail.com",
    attempts=1,
    queued_at=NOW - timedelta(hours=1),
)


def _lane(window: WindowCounts = EMPTY, **changes: object) -> LaneView:
    lane = Lane(ip="127.0.0.2", isp="gmail", stats=DayStats(attempted=3, delivered=3))
    return LaneView(
        lane=replace(lane, **changes),  # type: ignore[arg-type]
        schedule=SCHEDULE,
        next_window=NEXT_WINDOW,
        window=window,
    )


def _react(
    said: Said,
    *,
    recipient: RecipientView | None = ANN,
    lane: LaneView | None = None,
    retry: RetryPolicy = RETRY,
) -> Consequences:
    return consequences(
        said,
        recipient=recipient,
        lane=_lane() if lane is None else lane,
        now=NOW,
        retry=retry,
    )


# -- live replies --------------------------------------------------------------------

# verdict: (recipient state, retry at, counted attempts after, suppressed,
#           lane state after, lane events)
REPLIES = {
    Verdict.delivered: (RecipientState.delivered, None, 2, False, "ramping", []),
    Verdict.soft: (RecipientState.queued, NOW + timedelta(minutes=30), 2, False,
                   "ramping", []),
    Verdict.hard: (RecipientState.bounced, None, 2, True, "ramping", []),
    Verdict.throttle: (RecipientState.queued, NOW, 1, False, "backed_off",
                       ["throttle"]),
    Verdict.block: (RecipientState.queued, NOW, 1, False, "paused", ["block"]),
    Verdict.feedback: (RecipientState.queued, NOW + timedelta(minutes=30), 2,
                       False, "ramping", []),
    Verdict.autoreply: (RecipientState.queued, NOW + timedelta(minutes=30), 2,
                        False, "ramping", []),
}  # fmt: skip


def test_every_verdict_has_an_expected_reply_reaction() -> None:
    assert set(REPLIES) == set(Verdict)


@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_live_reply(verdict: Verdict) -> None:
    state, retry_at, attempts, suppressed, lane_state, causes = REPLIES[verdict]
    done = _react(Said(source=Source.reply, verdict=verdict, text="5xx said"))
    assert done.verdict is verdict
    assert done.decision is not None
    assert (done.decision.state, done.decision.next_attempt_at) == (state, retry_at)
    assert done.attempts == attempts
    assert (done.suppression is not None) is suppressed
    if done.suppression is not None:
        assert (done.suppression.address, done.suppression.source) == (
            "ann@gmail.com",
            "smtp",
        )
        assert done.suppression.reason == "hard"  # no reason given
    assert done.lane is not None
    assert done.lane.state.value == lane_state
    assert [event.cause for event in done.events] == causes
    assert all(event.reply == "5xx said" for event in done.events)
    # Every reply is one attempt on the lane's day and in its rolling window.
    assert done.lane.stats.attempted == 4 - (verdict is Verdict.feedback)
    assert done.window_add.attempted == 1
    assert done.window_add.hard == (verdict is Verdict.hard)
    assert not done.expired and not done.window_reset


def test_a_connection_failure_is_the_lanes_fault_and_not_counted() -> None:
    said = Said(source=Source.reply, verdict=Verdict.soft, lane_fault=True)
    done = _react(said)
    assert done.decision is not None
    assert (done.decision.state, done.decision.counts) == (RecipientState.queued, False)
    assert done.attempts == ANN.attempts


def test_a_dead_domain_suppresses_the_whole_domain() -> None:
    said = Said(source=Source.reply, verdict=Verdict.hard, reason="hostunknown")
    done = _react(said)
    assert done.suppression is not None
    assert (done.suppression.address, done.suppression.reason) == (
        "@gmail.com",
        "hostunknown",
    )


def test_a_block_saying_unauthenticated_pauses_for_authentication() -> None:
    said = Said(source=Source.reply, verdict=Verdict.block, enhanced="5.7.26")
    done = _react(said)
    assert [event.cause for event in done.events] == ["authentication"]


@pytest.mark.parametrize(
    ("verdict", "lane_fault", "expired"),
    [
        (Verdict.soft, False, True),  # its own failure: follow up (rule 3)
        (Verdict.soft, True, False),  # the connection's: never counts
        (Verdict.throttle, False, False),
        (Verdict.block, False, False),
    ],
)
def test_only_an_expiry_by_the_recipients_own_failure_asks_for_more(
    verdict: Verdict, lane_fault: bool, expired: bool
) -> None:
    old = replace(ANN, queued_at=NOW - timedelta(hours=73))
    said = Said(source=Source.reply, verdict=verdict, lane_fault=lane_fault)
    done = _react(said, recipient=old)
    assert done.decision is not None
    assert done.decision.state is RecipientState.expired
    assert done.expired is expired
    assert done.suppression is None


# -- late reports --------------------------------------------------------------------


def _late_effect(verdict: Verdict) -> Effect:
    kind = "feedback" if verdict is Verdict.feedback else "bounce"
    return effect_of(kind=kind, action="failed", verdict=verdict)


# verdict: (effect, recipient state, retry at, suppression (address, reason, source),
#           lane state, window hard, window complaints)
LATE = {
    Verdict.delivered: (Effect.ignore, None, None, None, "ramping", 0, 0),
    Verdict.soft: (Effect.retry, RecipientState.queued,
                   NOW + timedelta(minutes=30), None, "ramping", 0, 0),
    Verdict.hard: (Effect.suppress, RecipientState.bounced, None,
                   ("ann@gmail.com", "hard", "dsn"), "ramping", 1, 0),
    Verdict.throttle: (Effect.retry, RecipientState.queued, NOW, None,
                       "backed_off", 0, 0),
    Verdict.block: (Effect.retry, RecipientState.queued, NOW, None, "paused", 0, 0),
    Verdict.feedback: (Effect.complaint, None, None,
                       ("ann@gmail.com", "complaint", "arf"), "ramping", 0, 1),
    Verdict.autoreply: (Effect.ignore, None, None, None, "ramping", 0, 0),
}  # fmt: skip


@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_late_report_changes_the_recipient(verdict: Verdict) -> None:
    effect, state, retry_at, suppression, *_ = LATE[verdict]
    assert _late_effect(verdict) is effect
    said = Said(source=Source.late, verdict=verdict, effect=effect)
    done = consequences(said, recipient=ANN, lane=None, now=NOW, retry=RETRY)
    if state is None:
        assert done.decision is None
    else:
        assert done.decision is not None
        assert (done.decision.state, done.decision.next_attempt_at) == (
            state,
            retry_at,
        )
    got = done.suppression
    assert (
        None if got is None else (got.address, got.reason, got.source)
    ) == suppression
    assert done.lane is None and done.events == () and done.attempts is None
    assert not done.expired


@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_late_report_counts_on_the_lane(verdict: Verdict) -> None:
    *_, lane_state, hard, complaints = LATE[verdict]
    said = Said(source=Source.late, verdict=verdict, text="late text")
    done = consequences(said, recipient=None, lane=_lane(), now=NOW, retry=RETRY)
    assert done.decision is None and done.suppression is None
    assert done.lane is not None
    assert done.lane.state.value == lane_state
    assert done.lane.stats == DayStats(attempted=3, delivered=3).late(verdict)
    assert done.window_add == WindowCounts(
        attempted=0, hard=hard, complaints=complaints
    )
    assert all(event.reply == "late text" for event in done.events)


def test_an_unsigned_late_report_never_suppresses_a_whole_domain() -> None:
    for signed, address in ((True, "@gmail.com"), (False, "ann@gmail.com")):
        said = Said(
            source=Source.late,
            verdict=Verdict.hard,
            reason="hostunknown",
            effect=Effect.suppress,
            signed=signed,
        )
        done = consequences(said, recipient=ANN, lane=None, now=NOW, retry=RETRY)
        assert done.suppression is not None
        assert done.suppression.address == address


def test_an_address_no_suppression_can_name_is_not_suppressed() -> None:
    odd = replace(ANN, address="not an address", domain="")
    said = Said(source=Source.late, verdict=Verdict.feedback, effect=Effect.complaint)
    done = consequences(said, recipient=odd, lane=None, now=NOW, retry=RETRY)
    assert done.suppression is None


# -- expiries --------------------------------------------------------------------------


@pytest.mark.parametrize(("earlier", "suppressed"), [(0, False), (1, False), (2, True)])
@pytest.mark.parametrize("verdict", list(Verdict))
def test_an_expiry_suppresses_after_enough_in_a_row(
    verdict: Verdict, earlier: int, suppressed: bool
) -> None:
    history = replace(ANN, expired_in_a_row=earlier)
    said = Said(source=Source.expiry, verdict=verdict)
    done = _react(said, recipient=history)  # a lane given is left alone
    assert done.lane is None and done.events == () and done.decision is None
    assert (done.suppression is not None) is suppressed
    if done.suppression is not None:
        assert (done.suppression.reason, done.suppression.source) == (
            "repeated_soft",
            "smtp",
        )
        assert done.suppression.address == "ann@gmail.com"


# -- the rolling window (core.lanes.lane rule 7)
# --------------------------------------------


def test_the_window_judged_with_this_verdict_reacts_once_and_resets() -> None:
    limits = SCHEDULE.reactions.rates
    almost = WindowCounts(attempted=limits.min_sample, hard=0, complaints=0)
    said = Said(source=Source.late, verdict=Verdict.feedback)
    done = consequences(said, recipient=None, lane=_lane(almost), now=NOW, retry=RETRY)
    assert done.window_reset
    assert done.lane is not None and done.lane.state is LaneState.paused
    assert [event.cause for event in done.events] == ["complaint_rate"]
    quiet = consequences(said, recipient=None, lane=_lane(), now=NOW, retry=RETRY)
    assert not quiet.window_reset and quiet.events == ()


def test_a_hard_bounce_rate_steps_the_ramp_back() -> None:
    limits = SCHEDULE.reactions.rates
    bad = WindowCounts(
        attempted=limits.min_sample, hard=limits.min_sample // 10, complaints=0
    )
    said = Said(source=Source.reply, verdict=Verdict.hard)
    done = _react(said, lane=_lane(bad, ramp_day=5))
    assert [event.cause for event in done.events] == ["step_back"]
    assert done.lane is not None and done.lane.ramp_day < 5
    assert done.window_reset


def test_a_paused_lane_only_counts() -> None:
    paused = _lane(state=LaneState.paused, paused_until=NEXT_WINDOW)
    done = _react(Said(source=Source.reply, verdict=Verdict.block), lane=paused)
    assert done.lane is not None
    assert done.events == () and done.lane.stats.block == 1
