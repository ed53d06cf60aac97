"""Routing (core/recipients/routing.py): ISP by MX host, fixed routes, engagement
order."""

from __future__ import annotations

import pytest

from warmup.core.lanes.schedule import RampStep, Schedule
from warmup.core.recipients.routing import (
    Hop,
    domain_index,
    engagement_priority,
    isp_by_mx,
    next_hop,
    schedule_for,
)
from warmup.core.settings import Route

STEPS = (RampStep(first_day=1, last_day=1, per_hour=10),)
SCHEDULES = (
    Schedule(isp="gmail", mx=("*.google.com", "*.googlemail.com"), steps=STEPS),
    Schedule(isp="microsoft", mx=("*.protection.outlook.com",), steps=STEPS),
    Schedule(isp="default", steps=STEPS),
)


@pytest.mark.parametrize(
    ("hosts", "isp"),
    [
        (["aspmx.l.google.com"], "gmail"),
        (["ASPMX.L.GOOGLE.COM."], "gmail"),  # case and the root dot do not matter
        (["x.mail.protection.outlook.com"], "microsoft"),
        # The first host that matches decides, in preference order.
        (
            ["mx.unknown.test", "a.mail.protection.outlook.com", "b.google.com"],
            "microsoft",
        ),
        (["mx.unknown.test"], "default"),
        ([], "default"),  # no MX at all
    ],
)
def test_isp_by_mx(hosts: list[str], isp: str) -> None:
    assert isp_by_mx(hosts, SCHEDULES) == isp


ROUTES = {
    "gmail": Route(host="relay.gmail.test", port=2525),
    "vip.example": Route(host="vip-mx.test"),
}


@pytest.mark.parametrize(
    ("domain", "isp", "hop"),
    [
        ("gmail.com", "gmail", Hop(host="relay.gmail.test", port=2525)),
        # A route for the domain wins over the ISP's, in any case.
        ("VIP.example", "gmail", Hop(host="vip-mx.test", port=25)),
        ("yahoo.com", "yahoo", None),  # no route: look up MX
    ],
)
def test_next_hop(domain: str, isp: str, hop: Hop | None) -> None:
    assert next_hop(domain, isp, ROUTES) == hop


@pytest.mark.parametrize(
    ("score", "engaged_at", "expected"),
    [
        (0.0, None, 1e12),
        (5.0, 1.7e9, 1e12 + 5.0),  # a score outranks recency
        (None, 1.7e9, 1.7e9),
        (None, None, -1.0),  # no data at all: last
    ],
)
def test_engagement_priority(
    score: float | None, engaged_at: float | None, expected: float
) -> None:
    assert engagement_priority(score, engaged_at) == expected


def test_engagement_orders_scores_then_recency_then_the_rest() -> None:
    rows = [(None, None), (None, 1.8e9), (1.0, None), (None, 1.7e9), (9.0, 1.0)]
    ranked = sorted(rows, key=lambda r: engagement_priority(*r), reverse=True)
    assert ranked == [
        (9.0, 1.0),
        (1.0, None),
        (None, 1.8e9),
        (None, 1.7e9),
        (None, None),
    ]


def test_the_domain_index_names_the_isp_of_each_listed_domain() -> None:
    gmail = Schedule(isp="gmail", domains=("gmail.com", "GoogleMail.com"), steps=STEPS)
    other = Schedule(isp="other", domains=("gmail.com", "other.test"), steps=STEPS)
    index = domain_index([gmail, other])
    # Lower case, and the first schedule to list a domain keeps it.
    assert index == {
        "gmail.com": "gmail",
        "googlemail.com": "gmail",
        "other.test": "other",
    }
    assert index.get("unlisted.test") is None  # routed by its MX hosts


def test_an_isp_without_a_schedule_of_its_own_gets_the_default() -> None:
    by_name = {schedule.isp: schedule for schedule in SCHEDULES}
    assert schedule_for("gmail", by_name).isp == "gmail"
    assert schedule_for("yahoo", by_name).isp == "default"
    with pytest.raises(KeyError):
        schedule_for("yahoo", {"gmail": by_name["gmail"]})
