"""The ISPs' reputation data (core/lanes/reputation.py): parsing and what it means.

Inputs follow the published formats: the Postmaster Tools API v1 ``TrafficStats``
resource (https://developers.google.com/gmail/postmaster/reference/rest/v1/
domains.trafficStats) and the SNDS automated data feed
(https://sendersupport.olc.protection.outlook.com/snds/FAQ.aspx).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from warmup.core.lanes.reputation import (
    PostmasterDay,
    ReputationAction,
    ReputationDecision,
    decide_reputation,
    parse_snds,
    parse_traffic_stats,
)

DAY = date(2026, 12, 1)


def _stats(spam: float, *, low: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": "domains/example.com/trafficStats/20261201",
        "userReportedSpamRatio": spam,
        "domainReputation": "HIGH",
        "ipReputations": [
            {"reputation": "HIGH", "ipCount": "1", "sampleIps": ["203.0.113.10"]},
            {"reputation": "LOW", "ipCount": str(len(low)), "sampleIps": list(low)},
            "not a group",
        ],
        "spfSuccessRatio": 1,
        "dkimSuccessRatio": 0.995,
        "dmarcSuccessRatio": True,  # not a number: no figure
    }


def test_traffic_stats_are_read() -> None:
    got = parse_traffic_stats("Example.com", _stats(0.0035, low=("203.0.113.11",)))
    assert got == PostmasterDay(
        domain="example.com",
        day=DAY,
        spam_rate=0.0035,
        domain_reputation="HIGH",
        ip_reputation={"203.0.113.10": "HIGH", "203.0.113.11": "LOW"},
        spf_rate=1.0,
        dkim_rate=0.995,
        dmarc_rate=None,
    )
    assert parse_traffic_stats("example.com", {"name": "nonsense"}) is None
    bare = parse_traffic_stats("example.com", {"name": "d/trafficStats/20261201"})
    assert bare is not None and bare.spam_rate is None  # absent: never invented


IPS = {"example.com": ("203.0.113.10", "203.0.113.11")}


@pytest.mark.parametrize(
    ("spam", "action", "figure"),
    [
        (0.0035, ReputationAction.pause, "0.35%"),
        (0.0015, ReputationAction.hold, "0.15%"),
        (0.0002, None, ""),
    ],
)
def test_gmail_spam_rate_pauses_or_holds_the_gmail_lanes_of_the_domains_ips(
    spam: float, action: ReputationAction | None, figure: str
) -> None:
    stats = parse_traffic_stats("example.com", _stats(spam))
    assert stats is not None
    got = decide_reputation(postmaster=[stats], ips_of_domain=IPS)
    assert [(d.ip, d.isp, d.action) for d in got] == (
        [] if action is None else [(ip, "gmail", action) for ip in IPS["example.com"]]
    )
    assert all(figure in d.cause for d in got)


def test_a_low_ip_reputation_holds_only_that_ips_gmail_lane() -> None:
    stats = parse_traffic_stats("example.com", _stats(0.0, low=("203.0.113.11",)))
    assert stats is not None
    (got,) = decide_reputation(postmaster=[stats], ips_of_domain=IPS)
    assert (got.ip, got.isp, got.action) == (
        "203.0.113.11",
        "gmail",
        ReputationAction.hold,
    )
    assert "LOW" in got.cause


SNDS = (
    "203.0.113.10,12/1/2026 12:00 AM,12/1/2026 11:59 PM,1000,990,990,GREEN,< 0.1%,"
    ",,0,mta1.example.com,bounces@example.com,\n"
    "203.0.113.11,12/1/2026 12:00 AM,12/1/2026 11:59 PM,800,800,800,RED,2.5%,"
    "12/1/2026 1:00 AM,12/1/2026 3:00 PM,7,mta2.example.com,bounces@example.com,\n"
    "203.0.113.12,12/1/2026 12:00 AM,12/1/2026 11:59 PM,50,50,50,YELLOW,0.3%,"
    ",,0,mta3.example.com,bounces@example.com,\n"
    "not an ip,x,y\n"
    "203.0.113.13,someday,,1,1,1,RED,n/a\n"
)


def test_snds_rows_are_read() -> None:
    rows = parse_snds(SNDS)
    assert [(r.ip, r.filter_result, r.complaint_rate, r.trap_hits) for r in rows] == [
        ("203.0.113.10", "GREEN", 0.0, 0),
        ("203.0.113.11", "RED", 0.025, 7),
        ("203.0.113.12", "YELLOW", 0.003, 0),
        ("203.0.113.13", "RED", None, None),  # unreadable: never invented
    ]
    assert rows[0].day == DAY
    assert rows[3].day is None


def test_snds_red_pauses_only_that_ips_microsoft_lane_yellow_holds() -> None:
    got = decide_reputation(snds=parse_snds(SNDS), ips_of_domain={})
    assert [(d.ip, d.isp, d.action) for d in got] == [
        ("203.0.113.11", "microsoft", ReputationAction.pause),
        ("203.0.113.12", "microsoft", ReputationAction.hold),
        ("203.0.113.13", "microsoft", ReputationAction.pause),
    ]
    assert "RED" in got[0].cause and "trap hits 7" in got[0].cause
    assert "an unknown day" in got[2].cause and "complaints n/a" in got[2].cause


def test_the_strongest_decision_wins_per_lane() -> None:
    hold = parse_traffic_stats("a.example", _stats(0.0015))
    pause = parse_traffic_stats("b.example", _stats(0.004))
    assert hold is not None and pause is not None
    ips = {"a.example": ("203.0.113.10",), "b.example": ("203.0.113.10",)}
    (got,) = decide_reputation(postmaster=[hold, pause, hold], ips_of_domain=ips)
    assert got == ReputationDecision(
        ip="203.0.113.10",
        isp="gmail",
        action=ReputationAction.pause,
        cause=got.cause,
    )
    assert "0.40%" in got.cause
