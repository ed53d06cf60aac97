"""Late bounces and complaints: finding the send, the effect, the key, the lane."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.test_lane import SCHEDULE
from warmup.core.bounces.late import (
    Effect,
    FoundBy,
    Original,
    Reporter,
    UnsignedBudget,
    UnsignedRule,
    decide_unsigned,
    effect_of,
    event_key,
    find_original,
)
from warmup.core.bounces.verp import VERPToken, encode_verp
from warmup.core.lanes.lane import DayStats, Lane, on_late_verdict, on_reply
from warmup.core.model import LaneState, Verdict

SECRET = b"secret"
RETURN_PATH = "bounces@bounce.example"
TOKEN = VERPToken(recipient_id=42, attempt=2)
VERP = encode_verp(TOKEN, return_path=RETURN_PATH, secret=SECRET)
TRACE = VERP.partition("+")[2].partition("@")[0]
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def _find(envelope: tuple[str, ...] = (), traces: tuple[str, ...] = ()) -> Original:
    return find_original(
        envelope=envelope, traces=traces, return_path=RETURN_PATH, secret=SECRET
    )


def test_a_signed_verp_address_names_the_send() -> None:
    found = _find(envelope=("someone@else.example", f"<{VERP.upper()}>"))
    assert found.token == TOKEN
    assert found.found_by is FoundBy.verp
    assert not found.forged


def test_a_verp_address_that_does_not_verify_makes_the_report_forged() -> None:
    bad = VERP.replace(TRACE[-3:], "000")
    found = _find(envelope=(bad,), traces=(TRACE,))
    assert found.forged and found.token is None
    assert "does not verify" in found.detail


def test_the_trace_header_is_used_when_the_envelope_was_rewritten() -> None:
    found = _find(envelope=("postmaster@bounce.example",), traces=(f" {TRACE} ",))
    assert found.token == TOKEN
    assert found.found_by is FoundBy.header


def test_a_forged_trace_is_refused() -> None:
    found = _find(traces=("r42-a2-abcdef0123",))
    assert found.forged


def test_other_domains_and_plain_addresses_are_not_tokens() -> None:
    other = VERP.replace("bounce.example", "other.example")
    found = _find(envelope=(other, "bounces@bounce.example"), traces=("<abc@x>",))
    assert found.token is None and not found.forged and found.found_by is None


@pytest.mark.parametrize(
    ("kind", "action", "verdict", "effect"),
    [
        ("bounce", "failed", Verdict.hard, Effect.suppress),
        ("bounce", "failed", Verdict.soft, Effect.retry),
        ("bounce", "failed", Verdict.throttle, Effect.retry),
        ("bounce", "failed", Verdict.block, Effect.retry),
        ("bounce", "delayed", Verdict.soft, Effect.ignore),
        ("bounce", "delayed", Verdict.hard, Effect.ignore),
        ("delivery-report", "delivered", Verdict.delivered, Effect.ignore),
        ("bounce", "relayed", Verdict.delivered, Effect.ignore),
        ("autoreply", "", Verdict.autoreply, Effect.ignore),
        ("feedback", "", Verdict.feedback, Effect.complaint),
    ],
)
def test_effects(kind: str, action: str, verdict: Verdict, effect: Effect) -> None:
    assert effect_of(kind=kind, action=action, verdict=verdict) is effect


@given(st.sampled_from(["failed", "delayed", "delivered"]), st.text(max_size=20))
def test_keys_are_per_attempt_and_news(action: str, report_id: str) -> None:
    one = event_key(
        token=TOKEN, kind="bounce", action=action, address="a@b.c", report_id=report_id
    )
    # The same news about the same attempt is the same event, whatever mail said it.
    assert one == event_key(
        token=TOKEN,
        kind="bounce",
        action=action.upper(),
        address="x@y.z",
        report_id="?",
    )
    other_attempt = VERPToken(recipient_id=42, attempt=3)
    assert one != event_key(
        token=other_attempt, kind="bounce", action=action, address="", report_id=""
    )
    assert one != event_key(
        token=TOKEN, kind="feedback", action=action, address="", report_id=""
    )
    assert len(one) == 64


def test_unmatched_reports_are_keyed_by_report_and_address() -> None:
    first = event_key(
        token=None, kind="bounce", action="failed", address="A@b.c", report_id="<m1>"
    )
    assert first == event_key(
        token=None, kind="bounce", action="failed", address="a@b.c", report_id="<m1>"
    )
    assert first != event_key(
        token=None, kind="bounce", action="failed", address="a@b.c", report_id="<m2>"
    )


def _lane() -> Lane:
    lane = Lane(ip="192.0.2.1", isp=SCHEDULE.isp)
    for verdict in [Verdict.delivered] * 5:
        lane, _ = on_reply(
            lane, verdict, now=NOW, schedule=SCHEDULE, next_window=NOW + timedelta(1)
        )
    return lane


def test_a_late_hard_bounce_replaces_a_delivery() -> None:
    lane = _lane()
    late, events = on_late_verdict(
        lane, Verdict.hard, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert events == []
    assert late.stats == DayStats(attempted=5, delivered=4, hard=1)
    complained, _ = on_late_verdict(
        late, Verdict.feedback, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert complained.stats == DayStats(attempted=5, delivered=4, hard=1, complaints=1)


def test_a_late_throttle_backs_the_lane_off_like_a_live_one() -> None:
    lane = _lane()
    late, events = on_late_verdict(
        lane, Verdict.throttle, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    live, live_events = on_reply(
        lane, Verdict.throttle, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert late.state is LaneState.backed_off
    assert late.factor == live.factor
    assert [e.cause for e in events] == [e.cause for e in live_events] == ["throttle"]
    blocked, events = on_late_verdict(
        lane, Verdict.block, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert blocked.state is LaneState.paused
    assert [e.cause for e in events] == ["block"]


def test_late_news_on_an_empty_day_never_goes_negative() -> None:
    lane = Lane(ip="192.0.2.1", isp=SCHEDULE.isp)
    late, _ = on_late_verdict(
        lane, Verdict.soft, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert late.stats == DayStats(attempted=1, soft=1)
    same, _ = on_late_verdict(
        late, Verdict.delivered, now=NOW, schedule=SCHEDULE, next_window=NOW
    )
    assert same.stats == late.stats


@pytest.mark.parametrize(
    ("rule", "reporter", "held"),
    [
        (UnsignedRule(), Reporter(host="192.0.2.1"), "recipient_lookback is off"),
        (UnsignedRule(), Reporter(host="192.0.2.1", outside=True), "lookback"),
        (UnsignedRule(lookback=timedelta(days=7)), Reporter(), None),
        (
            UnsignedRule(lookback=timedelta(days=7)),
            Reporter(host="192.0.2.1", outside=True),
            "unsigned_from_outside is off",
        ),
        (
            UnsignedRule(lookback=timedelta(days=7), from_outside=True),
            Reporter(host="192.0.2.1", outside=True),
            None,
        ),
    ],
)
def test_unsigned_reports_cost_nothing_unless_configured(
    rule: UnsignedRule, reporter: Reporter, held: str | None
) -> None:
    why = decide_unsigned(rule, reporter)
    if held is None:
        assert why is None
    else:
        assert why is not None and held in why


def test_the_unsigned_budget_is_per_host_and_per_hour() -> None:
    budget = UnsignedBudget(2, max_hosts=2)
    assert [budget.take("a", NOW) for _ in range(3)] == [True, True, False]
    assert budget.take("b", NOW)
    later = NOW + timedelta(minutes=59)
    assert not budget.take("a", later)  # refusals do not count, the hour does
    assert budget.take("a", NOW + timedelta(hours=1))
    assert budget.take("c", NOW)  # bounded: the least recently seen goes
    assert set(budget.taken) == {"a", "c"}
    assert all(len(times) <= 2 for times in budget.taken.values())
