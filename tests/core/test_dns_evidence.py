"""DNS answers as evidence (core/recipients/dns_evidence.py): the decision table and
its bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup.core.recipients.dns_evidence import (
    DeadEvidence,
    DNSDecision,
    DNSStep,
    decide_dns,
    decide_recheck,
)
from warmup.core.settings import RetryPolicy

T0 = datetime(2030, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
RETRY = RetryPolicy()


def _decide(
    error: str | None, evidence: DeadEvidence | None, at: timedelta
) -> DNSDecision:
    return decide_dns(error, evidence, now=T0 + at, confirm_after=HOUR, retry=RETRY)


def test_a_first_nxdomain_defers_and_asks_again_on_the_retry_schedule() -> None:
    first = _decide("nxdomain", None, timedelta(0))
    assert first.step is DNSStep.defer
    assert first.evidence == DeadEvidence(
        error="nxdomain", first_at=T0, last_at=T0, lookups=1
    )
    assert first.next_check_at == T0 + RETRY.interval(1)


def test_two_lookups_less_than_confirm_after_apart_only_defer() -> None:
    first = _decide("nxdomain", None, timedelta(0))
    second = _decide("nullmx", first.evidence, timedelta(minutes=59))
    assert second.step is DNSStep.defer
    # The next look is no later than the instant the evidence can be confirmed.
    assert second.next_check_at == T0 + HOUR


def test_two_lookups_spanning_confirm_after_declare_the_domain_dead() -> None:
    first = _decide("nxdomain", None, timedelta(0))
    second = _decide("nxdomain", first.evidence, HOUR)
    assert second.step is DNSStep.fail
    assert second.evidence is not None
    assert second.evidence.lookups == 2


def test_one_lookup_is_never_enough_even_with_no_wait_configured() -> None:
    got = decide_dns("nxdomain", None, now=T0, confirm_after=timedelta(0), retry=RETRY)
    assert got.step is DNSStep.defer


@pytest.mark.parametrize("error", ["temporary", "servfail", "timeout"])
def test_servfail_and_timeouts_are_soft_and_keep_the_evidence(error: str) -> None:
    first = _decide("nxdomain", None, timedelta(0))
    got = _decide(error, first.evidence, 2 * HOUR)
    assert got.step is DNSStep.retry
    assert got.evidence == first.evidence
    assert _decide(error, None, timedelta(0)).evidence is None


def test_a_good_answer_forgets_the_evidence() -> None:
    first = _decide("nxdomain", None, timedelta(0))
    assert _decide(None, first.evidence, HOUR).step is DNSStep.route
    again = _decide("nxdomain", None, 2 * HOUR)
    assert again.step is DNSStep.defer  # a fresh start: one lookup is not enough


def test_evidence_checks_its_invariants() -> None:
    with pytest.raises(ValueError, match="servfail"):
        DeadEvidence(error="servfail", first_at=T0, last_at=T0, lookups=1)
    with pytest.raises(ValueError, match="inconsistent"):
        DeadEvidence(error="nxdomain", first_at=T0, last_at=T0, lookups=0)


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=4 * 3600), min_size=1, max_size=12)
)
def test_never_dead_before_confirm_after_nor_on_one_lookup(gaps: list[int]) -> None:
    evidence: DeadEvidence | None = None
    at = timedelta(0)
    for number, gap in enumerate(gaps, start=1):
        at += timedelta(seconds=gap) if number > 1 else timedelta(0)
        got = _decide("nxdomain", evidence, at)
        if got.step is DNSStep.fail:
            assert number >= 2 and at >= HOUR
            return
        assert got.next_check_at is not None and got.next_check_at > T0 + at - HOUR
        evidence = got.evidence
    assert not (len(gaps) >= 2 and at >= HOUR)


@pytest.mark.parametrize(
    ("age", "error", "lifted"),
    [
        (timedelta(days=29), None, None),  # not due: not even looked up
        (timedelta(days=30), None, True),  # resolves again: lifted
        (timedelta(days=31), "nxdomain", False),
        (timedelta(days=31), "temporary", False),  # unsure: kept
    ],
)
def test_recheck_lifts_only_a_due_suppression_that_resolves(
    age: timedelta, error: str | None, lifted: bool | None
) -> None:
    got = decide_recheck(
        error,
        suppressed_at=T0,
        now=T0 + age,
        recheck_after=timedelta(days=30),
    )
    assert got is lifted
