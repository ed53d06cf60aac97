"""DMARC aggregate reports (RFC 7489 ``rua``): their figures, and the judgement of
a source IP's authentication.

Rules:

1. A report's rows are counted per source IP x day (UTC, the report's begin) x
   header-From domain. A row passes DMARC when SPF or DKIM is both passing and
   aligned (``policy_evaluated``: RFC 7489 4.2).
2. An IP's day is *judged* when its reports hold at least ``min_messages``
   messages that day; it *fails* when fewer than ``min_pass_rate`` of them pass.
3. The IP's latest judged day decides: failing, its lanes get ``auth_failing``
   and their ramps hold (no advance); a later clean judged day releases them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

__all__ = [
    "AuthDay",
    "DMARCReport",
    "DMARCRow",
    "failing_ips",
    "merge_rows",
    "report_key",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DMARCRow:
    """Message counts for one source IP x day x header-From domain."""

    source_ip: str
    day: date
    header_from: str
    messages: int = 0
    spf_pass: int = 0
    spf_aligned: int = 0
    dkim_pass: int = 0
    dkim_aligned: int = 0
    dmarc_pass: int = 0
    quarantined: int = 0
    rejected: int = 0

    @property
    def key(self) -> tuple[str, date, str]:
        return (self.source_ip, self.day, self.header_from)

    def __add__(self, other: DMARCRow) -> DMARCRow:
        return replace(
            self,
            messages=self.messages + other.messages,
            spf_pass=self.spf_pass + other.spf_pass,
            spf_aligned=self.spf_aligned + other.spf_aligned,
            dkim_pass=self.dkim_pass + other.dkim_pass,
            dkim_aligned=self.dkim_aligned + other.dkim_aligned,
            dmarc_pass=self.dmarc_pass + other.dmarc_pass,
            quarantined=self.quarantined + other.quarantined,
            rejected=self.rejected + other.rejected,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DMARCReport:
    org: str
    report_id: str
    begin: datetime
    end: datetime
    policy_domain: str
    rows: tuple[DMARCRow, ...]

    @property
    def messages(self) -> int:
        return sum(row.messages for row in self.rows)


def report_key(org: str, report_id: str) -> str:
    """One report, however often it is ingested (reporter and its report id)."""
    return hashlib.sha256(f"{org}\0{report_id}".encode()).hexdigest()


def merge_rows(rows: Iterable[DMARCRow]) -> tuple[DMARCRow, ...]:
    """Rows with the same IP x day x domain added up, in first-seen order."""
    merged: dict[tuple[str, date, str], DMARCRow] = {}
    for row in rows:
        found = merged.get(row.key)
        merged[row.key] = row if found is None else found + row
    return tuple(merged.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthDay:
    """What the reports say about one source IP on one day (all domains)."""

    ip: str
    day: date
    messages: int
    dmarc_pass: int
    spf_aligned: int = 0
    dkim_aligned: int = 0

    @property
    def pass_rate(self) -> float:
        return self.dmarc_pass / self.messages if self.messages else 1.0

    def describe(self) -> str:
        return (
            f"DMARC pass {self.pass_rate:.1%} of {self.messages} messages from "
            f"{self.ip} on {self.day.isoformat()} (DKIM aligned "
            f"{self.dkim_aligned}, SPF aligned {self.spf_aligned})"
        )


def failing_ips(
    days: Sequence[AuthDay], *, min_messages: int, min_pass_rate: float
) -> dict[str, AuthDay | None]:
    """Per IP with a judged day: its latest judged day if that one fails, else
    None (clean). IPs with no judged day are absent (rules 2 and 3)."""
    latest: dict[str, AuthDay] = {}
    for item in days:
        if item.messages < min_messages:
            continue
        known = latest.get(item.ip)
        if known is None or item.day > known.day:
            latest[item.ip] = item
    return {
        ip: item if item.pass_rate < min_pass_rate else None
        for ip, item in latest.items()
    }
