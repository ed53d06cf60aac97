"""The ISPs' own reputation data: Google Postmaster Tools and Microsoft SNDS.

Rules:

1. Parsing never invents a figure: a field that is absent or unreadable stays None,
   and a row without an IP (SNDS) or a day (Postmaster) is skipped.
2. Google Postmaster Tools (API v1, ``domains.trafficStats``) reports per sending
   domain and day: the user-reported spam ratio, the domain's reputation, IP
   reputations as categories with *sample* IPs (an IP missing from the samples is
   unknown, not good), and the SPF, DKIM and DMARC success ratios (shown, not
   decided on: DMARC reports judge authentication, core.auth.dmarc). https://developers.google.com/gmail/postmaster/reference/rest/
3. Microsoft SNDS (the automated data feed, one CSV line per IP and activity
   period): filter result GREEN / YELLOW / RED, complaint rate, trap hits.
   https://sendersupport.olc.protection.outlook.com/snds/FAQ.aspx
4. Decisions (:func:`decide_reputation`), strongest first for each lane:
   Gmail spam rate >= 0.3 % pauses the gmail lanes of the domain's IPs; >= 0.1 %, or
   the IP's reputation LOW or BAD, holds their ramp (no advance). SNDS RED pauses the
   IP's microsoft lane; YELLOW holds it. Each decision carries its figure.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "GMAIL_HOLD_SPAM_RATE",
    "GMAIL_PAUSE_SPAM_RATE",
    "PostmasterDay",
    "ReputationAction",
    "ReputationDecision",
    "SNDSRow",
    "decide_reputation",
    "parse_snds",
    "parse_traffic_stats",
]

GMAIL_PAUSE_SPAM_RATE = 0.003
GMAIL_HOLD_SPAM_RATE = 0.001
_BAD_IP = frozenset({"LOW", "BAD"})
_NAME_DAY = re.compile(r"/trafficStats/(\d{8})$")
_PERCENT = re.compile(r"^\s*(<)?\s*(\d+(?:\.\d+)?)\s*%\s*$")
_SNDS_DATE_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S")


class ReputationAction(StrEnum):
    pause = "pause"  # stop the lane until the figure is good again
    hold = "hold"  # no ramp advance while the figure stands


@dataclass(frozen=True, slots=True, kw_only=True)
class PostmasterDay:
    """One domain's day in Google Postmaster Tools."""

    domain: str
    day: date
    spam_rate: float | None = None
    domain_reputation: str | None = None
    ip_reputation: Mapping[str, str] | None = None  # sample IP -> category
    spf_rate: float | None = None
    dkim_rate: float | None = None
    dmarc_rate: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SNDSRow:
    """One IP's activity period in Microsoft SNDS."""

    ip: str
    day: date | None
    filter_result: str | None
    complaint_rate: float | None  # "< 0.1%" reads as 0.0: below what SNDS reports
    trap_hits: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReputationDecision:
    ip: str
    isp: str
    action: ReputationAction
    cause: str


def parse_traffic_stats(domain: str, data: Mapping[str, Any]) -> PostmasterDay | None:
    """A ``TrafficStats`` resource (JSON object) of ``domain``; None without a day."""
    found = _NAME_DAY.search(str(data.get("name", "")))
    if found is None:
        return None
    day = datetime.strptime(found[1], "%Y%m%d").date()  # noqa: DTZ007 - a date
    ips: dict[str, str] = {}
    for group in data.get("ipReputations") or ():
        if isinstance(group, Mapping):
            category = str(group.get("reputation", "")).upper()
            for ip in group.get("sampleIps") or ():
                ips[str(ip)] = category
    reputation = data.get("domainReputation")
    return PostmasterDay(
        domain=domain.lower(),
        day=day,
        spam_rate=_ratio(data.get("userReportedSpamRatio")),
        domain_reputation=str(reputation).upper() if reputation else None,
        ip_reputation=ips,
        spf_rate=_ratio(data.get("spfSuccessRatio")),
        dkim_rate=_ratio(data.get("dkimSuccessRatio")),
        dmarc_rate=_ratio(data.get("dmarcSuccessRatio")),
    )


def _ratio(value: object) -> float | None:
    """A JSON number (never a bool); anything else is no figure (rule 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_snds(text: str) -> tuple[SNDSRow, ...]:
    """The SNDS data feed (CSV, no header line): IP, activity start, activity end,
    RCPT, DATA, recipients, filter result, complaint rate, trap start, trap end,
    trap hits, sample HELO, sample MAIL FROM, comments."""
    rows: list[SNDSRow] = []
    for fields in csv.reader(io.StringIO(text)):
        if len(fields) < 8 or not re.fullmatch(r"[\d.:a-fA-F]+", fields[0].strip()):
            continue
        result = fields[6].strip().upper() or None
        rows.append(
            SNDSRow(
                ip=fields[0].strip(),
                day=_snds_day(fields[1]),
                filter_result=result,
                complaint_rate=_percent(fields[7]),
                trap_hits=_integer(fields[10]) if len(fields) > 10 else None,
            )
        )
    return tuple(rows)


def _snds_day(text: str) -> date | None:
    for layout in _SNDS_DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), layout).date()  # noqa: DTZ007
        except ValueError:
            continue
    return None


def _percent(text: str) -> float | None:
    found = _PERCENT.match(text)
    if found is None:
        return None
    return 0.0 if found[1] else float(found[2]) / 100


def _integer(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def decide_reputation(
    *,
    postmaster: Iterable[PostmasterDay] = (),
    snds: Iterable[SNDSRow] = (),
    ips_of_domain: Mapping[str, Sequence[str]],
) -> tuple[ReputationDecision, ...]:
    """What the figures mean for lanes, one decision per (IP, ISP), strongest
    first (see rule 4). ``ips_of_domain``: the source IPs that send each domain."""
    found: dict[tuple[str, str], ReputationDecision] = {}
    for stats in postmaster:
        for ip in ips_of_domain.get(stats.domain, ()):
            decision = _gmail(stats, ip)
            if decision is not None:
                _keep(found, decision)
    for row in snds:
        decision = _microsoft(row)
        if decision is not None:
            _keep(found, decision)
    return tuple(found[key] for key in sorted(found))


def _gmail(stats: PostmasterDay, ip: str) -> ReputationDecision | None:
    rate = stats.spam_rate
    where = f"for {stats.domain} on {stats.day.isoformat()}"
    if rate is not None and rate >= GMAIL_PAUSE_SPAM_RATE:
        cause = f"gmail spam rate {rate:.2%} {where} (pause at 0.30%)"
        return ReputationDecision(
            ip=ip, isp="gmail", action=ReputationAction.pause, cause=cause
        )
    if rate is not None and rate >= GMAIL_HOLD_SPAM_RATE:
        cause = f"gmail spam rate {rate:.2%} {where} (hold at 0.10%)"
        return ReputationDecision(
            ip=ip, isp="gmail", action=ReputationAction.hold, cause=cause
        )
    category = (stats.ip_reputation or {}).get(ip)
    if category in _BAD_IP:
        cause = f"gmail IP reputation {category} {where}"
        return ReputationDecision(
            ip=ip, isp="gmail", action=ReputationAction.hold, cause=cause
        )
    return None


def _microsoft(row: SNDSRow) -> ReputationDecision | None:
    actions = {"RED": ReputationAction.pause, "YELLOW": ReputationAction.hold}
    action = actions.get(row.filter_result or "")
    if action is None:
        return None
    day = row.day.isoformat() if row.day else "an unknown day"
    rate = f"{row.complaint_rate:.1%}" if row.complaint_rate is not None else "n/a"
    traps = "n/a" if row.trap_hits is None else str(row.trap_hits)
    cause = (
        f"SNDS filter result {row.filter_result} for {row.ip} on {day} "
        f"(complaints {rate}, trap hits {traps})"
    )
    return ReputationDecision(ip=row.ip, isp="microsoft", action=action, cause=cause)


def _keep(
    found: dict[tuple[str, str], ReputationDecision], new: ReputationDecision
) -> None:
    key = (new.ip, new.isp)
    old = found.get(key)
    if old is None or (
        old.action is ReputationAction.hold and new.action is ReputationAction.pause
    ):
        found[key] = new
