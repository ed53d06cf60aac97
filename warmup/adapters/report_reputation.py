"""The reputation table of ``warmup report``: every stored day of Google
Postmaster Tools (per domain) and Microsoft SNDS (per IP), and what each figure
does to the ramp (core.lanes.reputation)."""

from __future__ import annotations

import html

from warmup.app.report import Report
from warmup.core.lanes.reputation import (
    PostmasterDay,
    ReputationAction,
    SNDSRow,
    decide_reputation,
)

__all__ = ["reputation_section"]

_EFFECT = {ReputationAction.pause: "pauses", ReputationAction.hold: "holds the ramp"}


def _effect(decided: set[ReputationAction]) -> str:
    for action in (ReputationAction.pause, ReputationAction.hold):
        if action in decided:
            return _EFFECT[action]
    return ""


def _postmaster_cells(day: PostmasterDay) -> tuple[str, ...]:
    decided = decide_reputation(postmaster=[day], ips_of_domain={day.domain: ["*"]})
    spam = "" if day.spam_rate is None else f"spam {day.spam_rate:.2%}"
    ips = ", ".join(f"{ip} {c}" for ip, c in sorted((day.ip_reputation or {}).items()))
    auth = " ".join(
        f"{name} {rate:.1%}"
        for name, rate in (
            ("SPF", day.spf_rate),
            ("DKIM", day.dkim_rate),
            ("DMARC", day.dmarc_rate),
        )
        if rate is not None
    )
    parts = [spam, f"domain {day.domain_reputation or '?'}", ips, auth]
    figures = "; ".join(part for part in parts if part)
    effect = _effect({d.action for d in decided})
    return ("Postmaster Tools", day.domain, day.day.isoformat(), figures, effect)


def _snds_cells(row: SNDSRow) -> tuple[str, ...]:
    decided = decide_reputation(snds=[row], ips_of_domain={})
    rate = "" if row.complaint_rate is None else f"complaints {row.complaint_rate:.1%}"
    traps = "" if row.trap_hits is None else f"trap hits {row.trap_hits}"
    figures = "; ".join(p for p in (row.filter_result or "?", rate, traps) if p)
    day = row.day.isoformat() if row.day else "?"
    return ("SNDS", row.ip, day, figures, _effect({d.action for d in decided}))


def reputation_section(report: Report) -> list[str]:
    """A table of the ISPs' figures, once any were fetched."""
    rows = [_postmaster_cells(day) for day in report.postmaster]
    rows += [_snds_cells(row) for row in report.snds]
    if not rows:
        return []
    head = ("source", "domain / IP", "day", "figures", "effect")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for cells in rows
    )
    return [
        "<h2>ISP reputation data</h2>",
        '<p class="note">Google Postmaster Tools per sending domain and Microsoft '
        "SNDS per IP, as fetched (reputation:). Gmail spam rate from 0.3 % pauses "
        "the domain's gmail lanes, from 0.1 % (or IP reputation LOW/BAD) holds "
        "their ramp; SNDS RED pauses the IP's microsoft lane, YELLOW holds it."
        "</p>",
        f'<table id="reputation" class="summary"><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table>",
    ]
