"""Which ISP a recipient domain belongs to, and where to connect for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from warmup.core.lanes.schedule import Schedule
from warmup.core.settings import Route

__all__ = [
    "DEFAULT_ISP",
    "Hop",
    "domain_index",
    "engagement_priority",
    "isp_by_mx",
    "next_hop",
    "schedule_for",
]

DEFAULT_ISP = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    host: str
    port: int


def isp_by_mx(mx_hosts: Sequence[str], schedules: Iterable[Schedule]) -> str:
    """The ISP whose MX patterns match the first (most preferred) matching host."""
    candidates = tuple(schedules)
    for host in mx_hosts:
        for schedule in candidates:
            if schedule.matches_mx(host):
                return schedule.isp
    return DEFAULT_ISP


def domain_index(schedules: Iterable[Schedule]) -> dict[str, str]:
    """Recipient domain (lower case) -> ISP, from the schedules' ``match.domains``;
    a domain not in it is routed by its MX hosts (:func:`isp_by_mx`). Build it
    once and look up with ``.get(domain.lower())``."""
    index: dict[str, str] = {}
    for schedule in schedules:
        for domain in schedule.domains:
            index.setdefault(domain.lower(), schedule.isp)
    return index


def schedule_for(isp: str, schedules: Mapping[str, Schedule]) -> Schedule:
    """This ISP's schedule, else the default one; KeyError if neither exists (a
    loaded config always has a default: warmup.config.schedules)."""
    found = schedules.get(isp) or schedules.get(DEFAULT_ISP)
    if found is None:
        raise KeyError(isp)
    return found


def next_hop(domain: str, isp: str, routes: Mapping[str, Route]) -> Hop | None:
    """A configured route for the domain (first) or the ISP; None means use MX."""
    route = routes.get(domain.lower()) or routes.get(isp)
    return Hop(host=route.host, port=route.port) if route else None


def engagement_priority(score: float | None, engaged_at_epoch: float | None) -> float:
    """One sortable number, higher first: scores, then recent engagement, then rest.

    Scores are ranked above any recency; recency (seconds since the epoch) above
    rows with no engagement data at all.
    """
    if score is not None:
        return 1e12 + score
    if engaged_at_epoch is not None:
        return engaged_at_epoch
    return -1.0
