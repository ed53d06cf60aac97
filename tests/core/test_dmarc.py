"""DMARC figures and the judgement of an IP's authentication (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.core.test_lane import SCHEDULE
from warmup.core.auth.dmarc import (
    AuthDay,
    DMARCReport,
    DMARCRow,
    failing_ips,
    merge_rows,
    report_key,
)
from warmup.core.lanes.lane import DayStats, Lane, auth_hold, close_day, on_reply
from warmup.core.model import LaneState, Verdict

D1, D2, D3 = date(2030, 1, 1), date(2030, 1, 2), date(2030, 1, 3)
NOW = datetime(2030, 1, 2, 1, tzinfo=UTC)
GOOD = DayStats(attempted=240, delivered=240)


def _day(ip: str, day: date, messages: int, passed: int) -> AuthDay:
    return AuthDay(ip=ip, day=day, messages=messages, dmarc_pass=passed)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ([], {}),
        ([_day("a", D1, 99, 0)], {}),  # too few messages to judge
        ([_day("a", D1, 100, 98)], {"a": None}),  # exactly 98 %: clean
        ([_day("a", D1, 100, 97)], {"a": _day("a", D1, 100, 97)}),
        # The latest judged day decides: a clean day releases, a bad one holds.
        ([_day("a", D1, 200, 10), _day("a", D2, 200, 200)], {"a": None}),
        (
            [_day("a", D2, 200, 10), _day("a", D1, 200, 200)],
            {"a": _day("a", D2, 200, 10)},
        ),
        # A later day too small to judge changes nothing.
        ([_day("a", D1, 200, 10), _day("a", D3, 5, 5)], {"a": _day("a", D1, 200, 10)}),
        (
            [_day("a", D1, 500, 500), _day("b", D1, 500, 400)],
            {"a": None, "b": _day("b", D1, 500, 400)},
        ),
    ],
)
def test_failing_ips(days: list[AuthDay], expected: dict[str, AuthDay | None]) -> None:
    assert failing_ips(days, min_messages=100, min_pass_rate=0.98) == expected


def test_rows_merge_per_key_and_reports_have_stable_keys() -> None:
    a = DMARCRow(source_ip="a", day=D1, header_from="x", messages=2, dmarc_pass=1)
    b = DMARCRow(source_ip="b", day=D1, header_from="x", messages=1, rejected=1)
    merged = merge_rows([a, b, a])
    assert merged == (
        DMARCRow(source_ip="a", day=D1, header_from="x", messages=4, dmarc_pass=2),
        b,
    )
    assert report_key("g", "1") == report_key("g", "1") != report_key("g", "2")
    assert len(report_key("g", "1")) == 64


@pytest.mark.parametrize(
    ("stats", "auth", "cause", "ramp_day"),
    [
        (DayStats(attempted=240, delivered=240), None, "advance", 3),
        (
            DayStats(attempted=240, delivered=240),
            _day("a", D1, 200, 10),
            "auth_failing",
            2,
        ),
        # A day that would not have advanced anyway says why it repeated.
        (DayStats(attempted=10, delivered=10), _day("a", D1, 200, 10), "repeat", 2),
    ],
)
def test_a_failing_ip_holds_its_ramp_at_day_close(
    stats: DayStats, auth: AuthDay | None, cause: str, ramp_day: int
) -> None:
    lane = Lane(ip="a", isp="gmail", ramp_day=2, day=D1, stats=stats, last_sent_at=NOW)
    closed, events = close_day(
        lane,
        new_day=D2,
        now=NOW,
        planned=240,
        schedule=SCHEDULE,
        holds=() if auth is None else (auth_hold(auth),),
    )
    assert [e.cause for e in events] == [cause]
    assert closed.ramp_day == ramp_day and closed.day == D2
    if auth is not None and cause == "auth_failing":
        assert "DMARC pass 5.0% of 200 messages from a" in events[0].detail
        assert "ramp day 2 held" in events[0].detail


def test_a_report_counts_its_messages() -> None:
    rows = (
        DMARCRow(source_ip="a", day=D1, header_from="x", messages=2),
        DMARCRow(source_ip="b", day=D1, header_from="x", messages=5),
    )
    report = DMARCReport(
        org="g",
        report_id="1",
        begin=NOW,
        end=NOW,
        policy_domain="x",
        rows=rows,
    )
    assert report.messages == 7
    assert _day("a", D1, 0, 0).pass_rate == 1.0  # nothing reported, nothing failed


@pytest.mark.parametrize(
    ("reason", "cause"),
    [("authfailure", "authentication"), ("blocklisted", "block"), ("", "block")],
)
def test_a_block_for_missing_authentication_says_run_doctor(
    reason: str, cause: str
) -> None:
    lane, events = on_reply(
        Lane(ip="a", isp="gmail"),
        Verdict.block,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NOW + timedelta(days=1),
        reply="550 5.7.26 This mail is unauthenticated",
        reason=reason,
    )
    assert lane.state is LaneState.paused
    assert lane.paused_until == NOW + timedelta(hours=4)  # as any block
    [event] = events
    assert event.cause == cause
    assert ("run `warmup doctor`" in event.detail) == (cause == "authentication")
    # Paused already: a second such reply changes nothing.
    again, more = on_reply(
        lane,
        Verdict.block,
        now=NOW,
        schedule=SCHEDULE,
        next_window=NOW,
        reason=reason,
    )
    assert (again.paused_until, more) == (lane.paused_until, [])
